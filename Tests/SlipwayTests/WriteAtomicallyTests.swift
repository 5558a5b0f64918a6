import Foundation
import Testing
@testable import Slipway

/// `FileOps.writeAtomically` from many threads of one process at once: every reader sees one
/// writer's bytes whole. (With a temp name of the pid alone, two threads shared the temp file:
/// `agent.json` was left with a shorter write's bytes followed by a longer one's tail.)
@Suite(.timeLimit(.minutes(1)))
struct WriteAtomicallyTests {
    @Test func concurrentWritersOfOneFileNeverMixTheirBytes() throws {
        let directory = NSTemporaryDirectory() + "slipway-atomic-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/agent.json"
        let contents = [Array(repeating: UInt8(ascii: "a"), count: 4_000), Array(repeating: UInt8(ascii: "b"), count: 40)]
        try FileOps.writeAtomically(contents[0], to: path, durable: false)
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 5) { worker in
            for round in 0..<400 {
                if worker == 4 {
                    // A reader beside the writers.
                    let seen = FileOps.readFile(path) ?? []
                    if !contents.contains(seen) { failures.withLock { $0.append("read \(seen.count) bytes, mixed") } }
                    continue
                }
                do {
                    try FileOps.writeAtomically(contents[(worker + round) % 2], to: path, durable: false)
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { Array($0.prefix(5)) })")
        #expect(contents.contains(FileOps.readFile(path) ?? []))
        let left = try FileManager.default.contentsOfDirectory(atPath: directory)
        #expect(left == ["agent.json"], "temp files left: \(left)")
    }
}
