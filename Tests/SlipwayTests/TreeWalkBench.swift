import Foundation
import Testing
@testable import Slipway

/// `bench/tree_walk.sh`: the race-free walks (`SafeTree`) against the path walks they replaced
/// (`LegacyTreeWalk`) on a 5,000-file tree, side by side. Off unless SLIPWAY_BENCH=1.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["SLIPWAY_BENCH"] == "1", "a benchmark: SLIPWAY_BENCH=1"))
struct TreeWalkBench {
    static let directories = 50, filesPerDirectory = 100, runs = 7
    /// The account the tree is handed to (nobody); only root can hand it over.
    static let owner: (uid: uid_t, gid: gid_t) = geteuid() == 0 ? (65534, 65534) : (geteuid(), getegid())

    @Test func walksOnAFiveThousandFileTree() throws {
        let dir = TempDir()
        var rows: [(String, Double, Double)] = []
        func median(_ body: (String) throws -> Void, setUp: (String) throws -> Void) throws -> Double {
            var times: [Double] = []
            for run in 0..<Self.runs {
                let tree = dir.path + "/t\(run)-\(UInt32.random(in: 0...UInt32.max))"
                try makeTree(tree)
                try setUp(tree)
                let start = ContinuousClock.now
                try body(tree)
                let elapsed = ContinuousClock.now - start
                times.append(Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000)
                try? SafeTree.remove(tree)
            }
            return times.sorted()[times.count / 2]
        }
        let none: (String) throws -> Void = { _ in }
        let appOwned: (String) throws -> Void = { LegacyTreeWalk.changeOwner($0, uid: Self.owner.uid, gid: Self.owner.gid) }
        rows.append(("pre-build: directories to the app",
                     try median({ LegacyTreeWalk.changeOwner($0, uid: Self.owner.uid, gid: Self.owner.gid, directoriesOnly: true) }, setUp: none),
                     try median({ try SafeTree.giveDirectories($0, to: Self.owner) }, setUp: none)))
        rows.append(("post-build: everything back to the agent",
                     try median({ LegacyTreeWalk.changeOwner($0, uid: geteuid(), gid: getegid()) }, setUp: appOwned),
                     try median({ try SafeTree.seal($0) }, setUp: appOwned)))
        rows.append(("remove the tree",
                     try median({ try LegacyTreeWalk.removeTree($0) }, setUp: none),
                     try median({ try SafeTree.remove($0) }, setUp: none)))
        print("tree: \(Self.directories * Self.filesPerDirectory) files in \(Self.directories) directories; median of \(Self.runs) runs")
        print("walk".padding(toLength: 42, withPad: " ", startingAt: 0) + "  path walk (before)   SafeTree (now)")
        for (name, before, after) in rows {
            print(name.padding(toLength: 42, withPad: " ", startingAt: 0)
                  + String(format: "  %10.1f ms        %10.1f ms", before, after))
        }
    }

    private func makeTree(_ top: String) throws {
        mkdir(top, 0o755)
        var payload = [UInt8](repeating: 0x61, count: 4096)
        for d in 0..<Self.directories {
            let sub = top + "/d\(d)"
            mkdir(sub, 0o755)
            for f in 0..<Self.filesPerDirectory {
                let fd = open(sub + "/f\(f)", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
                _ = payload.withUnsafeMutableBytes { write(fd, $0.baseAddress, $0.count) }
                close(fd)
            }
        }
    }
}
