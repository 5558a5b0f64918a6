import Foundation
import Testing
@testable import Slipway
@testable import SlipwayCore

/// The walks root makes through a tree an app account can write, raced the way an attacker
/// would: a process running as the app's account watches the walk's progress and, for the
/// directory being walked right now, swaps it for a symlink to a root-owned victim (whose
/// entries have the same names as the tree's), then swaps it back, again and again. Whatever
/// the timing, the victim must come out exactly as it went in.
///
/// `SLIPWAY_RACE_WALK=legacy` runs the same attempts against the path-based walks Slipway had
/// before (`LegacyTreeWalk`), to show that the racer wins against them.
@Suite(.serialized, .enabled(if: geteuid() == 0, "needs root: the walks race an app account"))
struct SafeTreeRaceTests {
    static let attempts = Int(ProcessInfo.processInfo.environment["SLIPWAY_RACE_ATTEMPTS"] ?? "") ?? 20
    static let directories = 10
    static let filesPerDirectory = 300  // 10 x 300 files + dirs: ~3,000 entries per tree
    static let legacy = ProcessInfo.processInfo.environment["SLIPWAY_RACE_WALK"] == "legacy"

    /// How the racer finds the directory the walk is in: the last one (in readdir order)
    /// already given to `uid`, or the first one a removal has not removed yet.
    enum Progress { case lastOwned(by: uid_t), beingRemoved }

    enum VictimEntries { case directories, files(owner: uid_t, mode: mode_t) }

    @Test func preBuildChownNeverLeavesTheTree() throws {
        let race = try Race(victimEntries: .directories)
        var hits = 0
        for _ in 0..<Self.attempts {
            let tree = try race.makeTree(owner: nil)
            try race.run(progress: .lastOwned(by: race.account.uid), top: tree) {
                if Self.legacy {
                    LegacyTreeWalk.changeOwner(tree, uid: race.account.uid, gid: race.account.gid, directoriesOnly: true)
                } else {
                    try SafeTree.giveDirectories(tree, to: (race.account.uid, race.account.gid))
                }
            }
            let damaged = !race.victimDamage().isEmpty
            hits += damaged ? 1 : 0
            try race.resetVictim()
            try SafeTree.remove(tree)
        }
        #expect(hits == 0, "the victim was changed in \(hits) of \(Self.attempts) attempts (the racer swapped \(race.swaps()) times)")
        #expect(race.racerTried(), "the racer never found a directory to swap: the test proved nothing")
    }

    @Test func postBuildSealNeverLeavesTheTree() throws {
        let race = try Race(victimEntries: .files(owner: 4242, mode: 0o666))
        var hits = 0
        for _ in 0..<Self.attempts {
            let tree = try race.makeTree(owner: race.account)
            try race.run(progress: .lastOwned(by: 0), top: tree) {
                if Self.legacy {
                    LegacyTreeWalk.changeOwner(tree, uid: 0, gid: 0)
                } else {
                    try SafeTree.seal(tree)
                }
            }
            let damaged = !race.victimDamage().isEmpty
            hits += damaged ? 1 : 0
            try race.resetVictim()
            try SafeTree.remove(tree)
        }
        #expect(hits == 0, "the victim was changed in \(hits) of \(Self.attempts) attempts (the racer swapped \(race.swaps()) times)")
        #expect(race.racerTried(), "the racer never found a directory to swap: the test proved nothing")
    }

    @Test func crashCleanUpNeverLeavesTheTree() throws {
        let race = try Race(victimEntries: .files(owner: 0, mode: 0o600))
        let layout = AppLayout(appsRoot: race.dir.path + "/apps", app: AppName("racy")!)
        let store = ReleaseStore(layout: layout)
        var hits = 0
        for attempt in 0..<Self.attempts {
            // An interrupted deploy's staging dir: its source tree was handed to the app's account.
            try FileOps.makeDirectories(layout.staging + "/r\(attempt)")
            let tree = try race.makeTree(owner: race.account, at: layout.staging + "/r\(attempt)/src")
            try race.run(progress: .beingRemoved, top: tree) {
                if Self.legacy {
                    try LegacyTreeWalk.removeTree(layout.staging)
                } else {
                    try store.cleanUpInterrupted()
                }
            }
            let damaged = !race.victimDamage().isEmpty
            hits += damaged ? 1 : 0
            try race.resetVictim()
            try SafeTree.remove(layout.staging)
        }
        #expect(hits == 0, "the victim was changed in \(hits) of \(Self.attempts) attempts (the racer swapped \(race.swaps()) times)")
        #expect(race.racerTried(), "the racer never found a directory to swap: the test proved nothing")
        if ProcessInfo.processInfo.environment["SLIPWAY_RACE_VERBOSE"] != nil { print("clean-up: \(hits) hits, \(race.swaps()) swaps") }
    }

    /// One suite's account, victim and racer script.
    final class Race {
        /// tmpfs: the race is the VFS's (rename, symlink, openat), the same on any file system,
        /// and the 3,000-file trees are made in milliseconds instead of seconds.
        let dir = TempDir(inMemory: true)
        let account: TestAccount
        let victim: String
        let victimEntries: VictimEntries
        private var swapLog: String { dir.path + "/swaps" }
        private var baseline: [String: [UInt32]] = [:]

        init(victimEntries: VictimEntries) throws {
            account = try TestAccount()
            self.victimEntries = victimEntries
            chmod(dir.path, 0o755)  // the account must reach the tree (not the victim)
            victim = dir.path + "/victim"
            _ = FileManager.default.createFile(atPath: swapLog, contents: nil)
            chown(swapLog, account.uid, account.gid)
            try FileManager.default.createDirectory(atPath: dir.path + "/racer", withIntermediateDirectories: false)
            try Self.racer.write(toFile: dir.path + "/racer/racer.py", atomically: false, encoding: .utf8)
            chmod(dir.path + "/racer/racer.py", 0o644)
            try resetVictim()
        }

        /// A root-only directory whose entries share the tree's file names.
        func resetVictim() throws {
            try SafeTree.remove(victim)
            mkdir(victim, 0o700)
            for index in 0..<SafeTreeRaceTests.filesPerDirectory {
                let path = victim + "/" + Race.fileName(index)
                switch victimEntries {
                case .directories:
                    mkdir(path, 0o700)
                case .files(let owner, let mode):
                    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
                    _ = "secret".withCString { write(fd, $0, 6) }
                    close(fd)
                    chown(path, owner, owner)
                    chmod(path, mode)
                }
            }
            baseline = snapshot()
        }

        static func fileName(_ index: Int) -> String { "f" + String(1000 + index).dropFirst() }

        private func snapshot() -> [String: [UInt32]] {
            var result: [String: [UInt32]] = [:]
            for name in [""] + (0..<SafeTreeRaceTests.filesPerDirectory).map({ "/" + Race.fileName($0) }) {
                var info = stat()
                if lstat(victim + name, &info) == 0 { result[name] = [info.st_uid, info.st_gid, info.st_mode, UInt32(info.st_nlink)] }
            }
            return result
        }

        /// The victim's entries that are gone or whose owner or mode changed.
        func victimDamage() -> [String] {
            let now = snapshot()
            return baseline.keys.filter { now[$0] != baseline[$0] }.sorted()
        }

        /// `directories` directories of `filesPerDirectory` files each (owned by `owner`, or
        /// root as an export leaves them), in a fresh directory.
        func makeTree(owner: TestAccount?, at path: String? = nil) throws -> String {
            let top = path ?? dir.path + "/tree-\(UInt32.random(in: 0...UInt32.max))"
            mkdir(top, 0o777)
            chmod(top, 0o777)  // as a build may leave it: writable by the account whoever owns it
            for d in 0..<SafeTreeRaceTests.directories {
                let sub = top + "/d\(d)"
                mkdir(sub, 0o777)
                chmod(sub, 0o777)
                for index in 0..<SafeTreeRaceTests.filesPerDirectory {
                    let fd = open(sub + "/" + Race.fileName(index), O_WRONLY | O_CREAT | O_EXCL, 0o664)
                    if let owner { fchown(fd, owner.uid, owner.gid) }
                    close(fd)
                }
                if let owner { chown(sub, owner.uid, owner.gid) }
            }
            if let owner { chown(top, owner.uid, owner.gid) }
            return top
        }

        /// Runs `walk` while the racer, as the app's account, swaps the directory being walked.
        func run(progress: Progress, top: String, walk: () throws -> Void) throws {
            let mode: String
            switch progress {
            case .lastOwned(let uid): mode = "owned:\(uid)"
            case .beingRemoved: mode = "first"
            }
            let ready = Pipe()
            let racer = try account.start(["/usr/bin/python3", dir.path + "/racer/racer.py", mode, top, victim, swapLog],
                                          output: ready.fileHandleForWriting)
            defer {
                // SIGKILL: the test process's blocked signals (SIGTERM among them) are inherited.
                kill(racer.processIdentifier, SIGKILL)
                racer.waitUntilExit()
            }
            _ = ready.fileHandleForReading.readData(ofLength: 6)  // "ready\n"
            if case .beingRemoved = progress {
                // The racer is swapping in this tree (on a loaded machine it may get little CPU)
                // when the walk starts.
                let before = swaps()
                let deadline = Date().addingTimeInterval(5)
                while swaps() < before + 2 && Date() < deadline { usleep(200) }
            }
            try walk()
        }

        func swaps() -> Int {
            (try? String(contentsOfFile: swapLog, encoding: .utf8))?.filter { $0 == "s" }.count ?? 0
        }

        /// Whether the racer ever found the walk's directory and tried to swap it ("t"; each swap
        /// that succeeded adds an "s").
        func racerTried() -> Bool {
            (try? String(contentsOfFile: swapLog, encoding: .utf8))?.contains("t") ?? false
        }

        /// Finds the directory the walk is in from what it has done so far (its readdir order
        /// is the walk's), and swaps it for a link to the victim for a moment, over and over.
        static let racer = #"""
        import os, sys, time
        mode, top, victim, log = sys.argv[1:5]
        swaps = open(log, "a")
        order = [e for e in os.listdir(top) if e.startswith("d")]
        print("ready", flush=True)
        def current():
            found = None
            for name in order:
                try:
                    st = os.lstat(os.path.join(top, name))
                except OSError:
                    continue
                if mode == "first":
                    return name
                if st.st_uid == int(mode.split(":")[1]):
                    found = name
            return found
        tried = False
        while True:
            name = current()
            if name is None:
                time.sleep(0.0002)
                continue
            if not tried:
                swaps.write("t"); swaps.flush(); tried = True
            path = os.path.join(top, name)
            try:
                os.rename(path, path + ".r")
            except OSError:
                time.sleep(0.0002)
                continue
            try:
                os.symlink(victim, path)
                swaps.write("s"); swaps.flush()
                time.sleep(0.0005)
                os.unlink(path)
            except OSError:
                pass
            try:
                os.rename(path + ".r", path)
            except OSError:
                pass
        """#
    }
}
