import Foundation
import Testing

/// The tests' own detached starts (`TestHTTPSGitServer.spawnAndWait`: fcgiwrap, a fleet's
/// agents) must not carry away an fd another test has open: a long-lived process holding a
/// test's output pipe keeps its reader from EOF, and in CI one held a binary copy open for
/// writing, so the re-exec of it failed with ETXTBSY.
@Suite(.endToEnd)
struct DetachedSpawnTests {
    @Test func aDetachedProcessKeepsNoFDItsStarterHadOpen() throws {
        var ends: [Int32] = [0, 0]
        try #require(pipe(&ends) == 0)  // no O_CLOEXEC, as Foundation's Pipe and FileManager's copy
        let pidFile = NSTemporaryDirectory() + "slipway-detached-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).pid"
        try TestHTTPSGitServer.spawnAndWait(["/bin/sh", "-c", "setsid -f /bin/sh -c 'echo $$ > \(pidFile); exec /bin/sleep 30' >/dev/null 2>&1 </dev/null"])
        var sleeper: pid_t?
        defer {
            if let sleeper { kill(sleeper, SIGKILL) }
            unlink(pidFile)
        }
        let deadline = Date().addingTimeInterval(10)
        while sleeper == nil, Date() < deadline {
            sleeper = (try? String(contentsOfFile: pidFile, encoding: .utf8)).flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            if sleeper == nil { usleep(10_000) }
        }
        try #require(sleeper != nil)
        close(ends[1])
        // EOF at once only if no process but this one held the write end.
        var poller = pollfd(fd: ends[0], events: Int16(POLLIN), revents: 0)
        defer { close(ends[0]) }
        try #require(poll(&poller, 1, 3_000) == 1, "the detached process holds the pipe's write end")
        var byte: UInt8 = 0
        #expect(read(ends[0], &byte, 1) == 0)
    }
}
