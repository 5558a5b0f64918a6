import Foundation
import Testing
@testable import Slipway

/// How the agent reads nginx's master from its pid file and /proc, on real processes: a process
/// titled as nginx's master is (`exec -a`) with children of its own.
@Suite(.timeLimit(.minutes(1)))
struct NginxMasterTests {
    @Test func thePidFileAndTheProcessTitleAreReadStrictly() {
        #expect(NginxMaster.parsePID(Array("1234\n".utf8)) == 1234)
        for bad in ["", "\n", "12 34", "-5", "1", "0x10", "１２", "99999999999"] {
            #expect(NginxMaster.parsePID(Array(bad.utf8)) == nil, "\(bad)")
        }
        #expect(NginxMaster.isMasterTitle(Array("nginx: master process /usr/sbin/nginx -g daemon on;\0".utf8)))
        #expect(!NginxMaster.isMasterTitle(Array("nginx: worker process\0".utf8)))
        #expect(!NginxMaster.isMasterTitle(Array("/usr/bin/python3\0nginx: master process\0".utf8)))
        #expect(NginxMaster.parseChildren(Array("12 345 \n".utf8)) == [12, 345])
        #expect(NginxMaster.parseChildren([]) == [])
        let stat = "812 (nginx: a) b) S 1 812 812 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 123456 10000000 300 18446744073709551615"
        #expect(ProcessTable.startTime(inStat: Array(stat.utf8)) == 123456)
        #expect(ProcessTable.startTime(inStat: Array("812 (nginx) S 1".utf8)) == nil)
        let idle = "Name:\tnginx\nShdPnd:\t0000000000000000\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000001000\n"
        #expect(NginxMaster.isWaitingIdle(Array(idle.utf8)) == true)
        #expect(NginxMaster.isWaitingIdle(Array(idle.replacingOccurrences(of: "SigBlk:\t0000000000000000", with: "SigBlk:\t0000000018016a07").utf8)) == false)
        #expect(NginxMaster.isWaitingIdle(Array(idle.replacingOccurrences(of: "ShdPnd:\t0000000000000000", with: "ShdPnd:\t0000000000000001").utf8)) == false,
                "a SIGHUP not yet taken")
        #expect(NginxMaster.isWaitingIdle(Array("Name:\tnginx\n".utf8)) == nil)
    }

    @Test func aNewGenerationIsANewChildStartedSinceTheSignalOrANewMaster() {
        let before = NginxMaster(pid: 10, children: [11, 12])
        let started: [pid_t: UInt64] = [11: 50, 12: 60, 13: 200, 14: 90]
        func new(_ now: NginxMaster) -> Bool { now.startedNewGeneration(since: before, after: 100, startTick: { started[$0] }) }
        #expect(!new(NginxMaster(pid: 10, children: [11, 12])))
        #expect(!new(NginxMaster(pid: 10, children: [11])), "an old worker exiting is not a reload")
        #expect(new(NginxMaster(pid: 10, children: [11, 12, 13])))
        #expect(!new(NginxMaster(pid: 10, children: [11, 12, 14])), "a child the first read missed, started before the signal")
        #expect(new(NginxMaster(pid: 20, children: [21])))
    }

    @Test func aMasterIsReadFromProcAndANewChildIsSeen() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nginx-master-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // It starts a second child when `more` appears: a new generation, as a reload's. It
        // waits with no signal blocked, as a master between reloads does.
        let master = try Self.fakeMaster("signal.pthread_sigmask(signal.SIG_SETMASK, []); "
                                         + "first = subprocess.Popen([\"sleep\", \"30\"]); "
                                         + "[time.sleep(0.02) for _ in iter(lambda: os.path.exists(\"\(dir)/more\"), True)]; "
                                         + "second = subprocess.Popen([\"sleep\", \"30\"]); time.sleep(30)")
        defer { Self.kill(master) }
        let pidFile = dir + "/nginx.pid"
        try "\(master.processIdentifier)\n".write(toFile: pidFile, atomically: true, encoding: .utf8)
        _ = FileManager.default.createFile(atPath: dir + "/more", contents: nil)
        let deadline = ContinuousClock.now + .seconds(10)
        var read: NginxMaster?
        while read?.children.count != 2, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
            read = NginxMaster.read(pidFile: pidFile)
        }
        let now = try #require(read)
        #expect(now.pid == master.processIdentifier && now.children.count == 2)
        let first = NginxMaster(pid: now.pid, children: [now.children.min()!])
        func wait(since before: NginxMaster, patience: Duration = .seconds(5)) async -> NginxMaster.Verdict {
            // The fallback's deadline (no readable state: no new child by then means refused) far
            // from the idle master's verdict below, which a loaded host may delay.
            await NginxMaster.awaitReload(pidFile: pidFile, since: before, signalledAfter: 0, deadline: .seconds(6), patience: patience, interval: .milliseconds(20))
        }
        #expect(await wait(since: first) == .taken)
        // No new child, and the master waits with no signal blocked: done, and refused.
        let started = ContinuousClock.now
        #expect(await wait(since: now) == .notTaken)
        #expect(ContinuousClock.now - started < .seconds(3))
        #expect(await NginxMaster.awaitReload(pidFile: pidFile, since: first, signalledAfter: NginxMaster.bootTick() + 100, deadline: .seconds(1),
                                              patience: .seconds(5), interval: .milliseconds(20)) == .notTaken,
                "its second child started before the signal")

        // A pid file anyone may write, or a symlink, is not read.
        chmod(pidFile, 0o666)
        #expect(NginxMaster.read(pidFile: pidFile) == nil)
        chmod(pidFile, 0o644)
        symlink(pidFile, dir + "/link.pid")
        #expect(NginxMaster.read(pidFile: dir + "/link.pid") == nil)
        #expect(NginxMaster.read(pidFile: pidFile) != nil)

        // A pid file that names another program (nginx stopped, the pid reused) is not a master.
        try "\(getpid())\n".write(toFile: pidFile, atomically: true, encoding: .utf8)
        #expect(NginxMaster.read(pidFile: pidFile) == nil)
        #expect(NginxMaster.read(pidFile: dir + "/missing.pid") == nil)
    }

    /// A master that blocks its signals is still working on a reload: the wait goes on until it
    /// is done, or its patience ends.
    @Test func aMasterStillReloadingIsWaitedFor() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nginx-busy-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let master = try Self.fakeMaster("signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP, signal.SIGCHLD}); "
                                         + "child = subprocess.Popen([\"sleep\", \"30\"]); time.sleep(30)")
        defer { Self.kill(master) }
        try "\(master.processIdentifier)\n".write(toFile: dir + "/nginx.pid", atomically: true, encoding: .utf8)
        var read: NginxMaster?
        let deadline = ContinuousClock.now + .seconds(10)
        while read == nil, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
            read = NginxMaster.read(pidFile: dir + "/nginx.pid")
        }
        let before = try #require(read)
        let started = ContinuousClock.now
        let verdict = await NginxMaster.awaitReload(pidFile: dir + "/nginx.pid", since: before, signalledAfter: 0, deadline: .milliseconds(100),
                                                    patience: .milliseconds(600), interval: .milliseconds(20))
        #expect(verdict == .stillReloading)
        #expect(ContinuousClock.now - started >= .milliseconds(600), "a busy master was judged before its patience ended")
    }

    /// A Python process titled as nginx's master (`exec -a`), running `script` (with os, signal,
    /// subprocess and time imported).
    static func fakeMaster(_ script: String) throws -> Process {
        let master = Process()
        master.executableURL = URL(fileURLWithPath: "/bin/bash")
        master.arguments = ["-c", "exec -a 'nginx: master process test' /usr/bin/python3 -c 'import os, signal, subprocess, time; \(script)'"]
        try master.run()
        return master
    }

    static func kill(_ master: Process) {
        let pid = master.processIdentifier
        for child in NginxMaster.parseChildren(FileOps.readFile("/proc/\(pid)/task/\(pid)/children") ?? []) { Foundation.kill(child, SIGKILL) }
        Foundation.kill(pid, SIGKILL)
        master.waitUntilExit()
    }
}
