import Foundation
import Testing
@testable import Slipway
import SlipwayCore

/// A new worker starts at a lower CPU priority, but the priority never makes a start fail: one
/// not ready by half its `ready.timeout` gets normal priority for the rest of it (on a saturated
/// host, Node at nice 10 once took 7 s to listen and missed a 5 s timeout).
@Suite(.timeLimit(.minutes(2)))
struct StartPriorityRaiseTests {
    @Test func aWorkerNotReadyByHalfItsTimeoutGetsNormalPriority() async throws {
        let sandbox = try PassSandbox()
        // Never sends READY=1; the priority is raised 5 s after the start, the start fails at 10 s.
        try sandbox.commitWorkers(command: "exec sleep 30", port: try PassSandbox.freePort(), readyTimeout: "10s")
        let runtime = AgentRuntime(config: sandbox.config)
        let stateDir = sandbox.stateDir
        let pass = Task { await sandbox.reconciler(runtime: runtime).pass() }
        var found: pid_t?
        for _ in 0..<3_000 where found == nil {
            found = WorkerMarker.find(stateDir: stateDir, app: AppName("demo")!).first?.pid
            if found == nil { try await Task.sleep(for: .milliseconds(20)) }
        }
        let worker = try #require(found, "the worker never started")
        let atStart = Self.priority(of: worker)
        try await Task.sleep(for: .seconds(5.5))
        let later = Self.priority(of: worker)
        _ = await pass.value
        await runtime.supervisor.stopAll()
        #expect(atStart == .low, "just started: \(String(describing: atStart))")
        #expect(later == .normal, "5.5 s later, still starting: \(String(describing: later))")
        #expect(kill(worker, 0) != 0, "the failed start's worker is gone")
    }

    enum Priority { case low, normal }

    /// Low when the worker's cgroup has a `cpu.weight` of 10 or a thread of its tree is at nice
    /// 10 (`StartPriority`); nil when the process is gone.
    static func priority(of pid: pid_t) -> Priority? {
        guard kill(pid, 0) == 0 else { return nil }
        if let cgroup = FileOps.readFile("/proc/\(pid)/cgroup").map({ String(decoding: $0, as: UTF8.self) }),
           let line = cgroup.split(separator: "\n").first(where: { $0.hasPrefix("0::") }), let mount = Containment.cgroup2Mount(),
           let weight = FileOps.readFile(mount + line.dropFirst(3) + "/cpu.weight").map({ String(decoding: $0, as: UTF8.self) }),
           weight.trimmingCharacters(in: .whitespacesAndNewlines) == String(StartPriority.startingWeight) {
            return .low
        }
        for process in StartPriority.tree(of: pid) {
            for thread in ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(process)/task")) ?? []).compactMap({ id_t($0) }) {
                errno = 0
                let nice = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), thread)
                if errno == 0 && nice == StartPriority.startingNice { return .low }
            }
        }
        return .normal
    }
}
