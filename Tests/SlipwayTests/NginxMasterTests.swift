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
    }

    @Test func aNewGenerationIsANewChildOrANewMaster() {
        let before = NginxMaster(pid: 10, children: [11, 12])
        #expect(!NginxMaster(pid: 10, children: [11, 12]).startedNewGeneration(since: before))
        #expect(!NginxMaster(pid: 10, children: [11]).startedNewGeneration(since: before), "an old worker exiting is not a reload")
        #expect(NginxMaster(pid: 10, children: [11, 12, 13]).startedNewGeneration(since: before))
        #expect(NginxMaster(pid: 20, children: [21]).startedNewGeneration(since: before))
    }

    @Test func aMasterIsReadFromProcAndANewChildIsSeen() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nginx-master-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Its child starts a second child when `more` appears: a new generation, as a reload's.
        let master = Process()
        master.executableURL = URL(fileURLWithPath: "/bin/bash")
        master.arguments = ["-c", "sleep 30 & while [ ! -e \(dir)/more ]; do sleep 0.02; done; sleep 30 & exec -a 'nginx: master process test' sleep 30"]
        try master.run()
        defer {
            let children = NginxMaster.parseChildren(FileOps.readFile("/proc/\(master.processIdentifier)/task/\(master.processIdentifier)/children") ?? [])
            for child in children { kill(child, SIGKILL) }
            kill(master.processIdentifier, SIGKILL)
            master.waitUntilExit()
        }
        let pidFile = dir + "/nginx.pid"
        try "\(master.processIdentifier)\n".write(toFile: pidFile, atomically: true, encoding: .utf8)

        // Not yet titled as a master (bash is still waiting): not nginx, so no judgement.
        #expect(NginxMaster.read(pidFile: pidFile) == nil)
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
        #expect(await NginxMaster.awaitNewGeneration(pidFile: pidFile, since: first, deadline: .seconds(1), interval: .milliseconds(20)))
        let started = ContinuousClock.now
        #expect(!(await NginxMaster.awaitNewGeneration(pidFile: pidFile, since: now, deadline: .milliseconds(300), interval: .milliseconds(20))))
        #expect(ContinuousClock.now - started < .seconds(2))

        // A pid file that names another program (nginx stopped, the pid reused) is not a master.
        try "\(getpid())\n".write(toFile: pidFile, atomically: true, encoding: .utf8)
        #expect(NginxMaster.read(pidFile: pidFile) == nil)
        #expect(NginxMaster.read(pidFile: dir + "/missing.pid") == nil)
    }
}
