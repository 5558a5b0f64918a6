import Foundation
import Testing
@testable import Slipway
@testable import SlipwayCore

/// The capped build log against a real child process writing through its pipe.
@Suite(.timeLimit(.minutes(2)))
struct BuildLogTests {
    @Test func aFloodOfOutputKeepsTheHeadAndTheTailWithinTheCap() async throws {
        let dir = TempDir()
        let path = dir.path + "/r.build.log"
        let cap = 1 << 20
        let log = try BuildLog.create(at: path, maxBytes: cap)
        log.note("==> backend build: flood")
        // 64 MiB of numbered lines, then a last line that must survive.
        let child = try ChildProcess.spawnShell("seq 1 8000000; echo LAST-LINE", in: dir.path,
                                                environment: ["PATH": "/usr/bin:/bin"], outputFD: log.fd)
        let termination = await child.wait(timeout: .seconds(60))
        #expect(termination.succeeded)
        log.note("==> backend build exited 0")
        log.close()
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let size = text.utf8.count
        #expect(size <= cap + 512, "the log is \(size) bytes for a cap of \(cap)")
        #expect(text.hasPrefix("==> backend build: flood\n1\n2\n3\n"))
        #expect(text.contains("bytes of output cut here; build logs keep at most build_log_max = 1M"))
        #expect(text.hasSuffix("LAST-LINE\n==> backend build exited 0\n"))
    }

    @Test func aSmallLogIsWrittenWholeAndNothingIsSaidAboutCutting() async throws {
        let dir = TempDir()
        let path = dir.path + "/r.build.log"
        let log = try BuildLog.create(at: path, maxBytes: 1 << 20)
        let child = try ChildProcess.spawnShell("echo one; echo two >&2", in: dir.path, environment: ["PATH": "/usr/bin:/bin"], outputFD: log.fd)
        #expect(await child.wait(timeout: .seconds(30)).succeeded)
        let mark = log.size
        #expect(mark == 8)
        log.note("after")
        #expect(log.text(since: mark) == "after\n")
        log.close()
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "one\ntwo\nafter\n")
    }

    /// A stray that keeps the pipe open and writes forever does not keep the log open.
    @Test func aStrayWriterDoesNotHoldTheLogOpen() async throws {
        let dir = TempDir()
        let path = dir.path + "/r.build.log"
        let log = try BuildLog.create(at: path, maxBytes: 1 << 20)
        let child = try ChildProcess.spawnShell("(while :; do echo stray; sleep 0.01; done) & echo $! > stray.pid", in: dir.path,
                                                environment: ["PATH": "/usr/bin:/bin"], outputFD: log.fd)
        #expect(await child.wait(timeout: .seconds(30)).succeeded)
        let clock = ContinuousClock()
        let closing = clock.measure { log.close() }
        #expect(closing < .seconds(3))
        let stray = Int32((try? String(contentsOfFile: dir.path + "/stray.pid", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
        // With its pipe closed, the stray's next echo gets SIGPIPE.
        var gone = false
        for _ in 0..<200 where !gone {
            gone = stray > 0 && kill(stray, 0) != 0
            if !gone { usleep(10_000) }
        }
        if stray > 0 && !gone { kill(stray, SIGKILL) }
        #expect(gone, "the stray writer outlived its closed log")
    }
}
