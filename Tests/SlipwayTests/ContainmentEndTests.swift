import Foundation
import Logging
import Testing
@testable import Slipway
@testable import SlipwayCore

/// A supervisor ending a dead agent's worker groups (`stopOrphans`) goes on answering
/// `slipway status` (its `table()`) while a group will not go, on a real group and process.
@Suite(.enabled(if: geteuid() == 0 && Containment.base != nil, "needs root and a writable cgroup v2"), .timeLimit(.minutes(1)))
struct ContainmentEndTests {
    @Test func aSupervisorEndingAnOrphansGroupThatWillNotGoStillAnswers() async throws {
        let state = TempDir()
        // A worker's group of a live agent's name (this process's pid: no other agent's sweep
        // takes it), which the kernel will not remove yet: a group below it gives EBUSY, as a
        // group whose last process is stuck in the kernel would.
        let directory = Containment.base! + "/w0-\(getpid())-\(String(UInt64.random(in: 0...UInt64.max), radix: 36))"
        #expect(mkdir(directory, 0o755) == 0)
        #expect(mkdir(directory + "/held", 0o755) == 0)
        // Whatever happens, everything in the group is killed and the group removed (within 5 s);
        // no pid is signalled, so none reused after the reap can be hit.
        defer { rmdir(directory + "/held"); Containment.adopt(directory: directory).end() }
        let argv = Containment.adopt(directory: directory).wrap(["/bin/sleep", "600"])
        let orphan = try ChildProcess.spawn(argv: argv, environment: [], directory: "/", stdout: 2, stderr: 2)
        let reaper = Task.detached { await orphan.wait(timeout: .seconds(50)) }
        let name = String(directory.split(separator: "/").last!)
        for _ in 0..<200 where Containment.cgroup(of: String(orphan.pid))?.hasSuffix("/" + name) != true {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(Containment.cgroup(of: String(orphan.pid))?.hasSuffix("/" + name) == true, "the orphan runs in its group")
        let started = try #require(ProcessTable.startTime(of: orphan.pid))
        let release = try #require(ReleaseID("20261204T180000Z-abcdef1"))
        let worker = WorkerTable.Worker(slot: 0, pid: orphan.pid, procStartTime: started, release: release, generation: "g",
                                        state: .ready, startedAt: .now, restarts: 0)
        try WorkerTable(app: "endtest", workers: [worker], updatedAt: .now).save(stateDir: state.path)

        let supervisor = AppSupervisor(app: AppName("endtest")!, stateDir: state.path, appDirectory: state.path,
                                       logger: Logger(label: "slipway.test"), metrics: AgentMetrics())
        #expect(await supervisor.table().workers.map(\.pid) == [orphan.pid], "the orphan is found from the table")
        let stopping = Task { await supervisor.stopOrphans(timeout: .seconds(5), signal: SIGTERM) }
        _ = await reaper.value
        try await Task.sleep(for: .milliseconds(100))  // its group's end has begun, and cannot finish

        let clock = ContinuousClock()
        let asked = clock.now
        _ = await supervisor.table()
        let answered = clock.now - asked
        #expect(answered < .milliseconds(2500), "status waited for the group's end: \(answered)")
        #expect(FileManager.default.fileExists(atPath: directory), "the group cannot be gone yet")

        // Once nothing holds it, the same end removes it.
        rmdir(directory + "/held")
        await stopping.value
        #expect(!FileManager.default.fileExists(atPath: directory))
    }
}
