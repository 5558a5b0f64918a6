import Foundation
import Testing
@testable import Slipway
import SlipwayCore

/// The monitor of an app's workers is woken by their watchers and its own deadlines: it never
/// spins, neither while a rollout holds the app nor when no worker runs at all. (A first
/// version looked again at once whenever it had nothing to do, burning a core beside every
/// starting worker.)
@Suite(.timeLimit(.minutes(2)))
struct SupervisorMonitorTests {
    @Test func aFailedFirstStartLeavesAMonitorThatSleeps() async throws {
        let sandbox = try PassSandbox()
        try sandbox.commitWorkers(command: "exit 3", port: try PassSandbox.freePort())
        let runtime = AgentRuntime(config: sandbox.config)
        _ = await sandbox.reconciler(runtime: runtime).pass()
        let app = try #require(await runtime.supervisor.existing(AppName("demo")!))
        let before = await app.monitorRounds
        try await Task.sleep(for: .seconds(1))
        let rounds = await app.monitorRounds - before
        #expect(rounds <= 3, "the monitor looked \(rounds) times in 1 s with no worker running")
        await runtime.supervisor.stopAll()
    }

    @Test func aRolloutWaitingForReadinessLeavesTheMonitorAsleep() async throws {
        let sandbox = try PassSandbox()
        // Never sends READY=1: the rollout holds the app for the whole ready timeout (3 s).
        try sandbox.commitWorkers(command: "exec sleep 30", port: try PassSandbox.freePort())
        let runtime = AgentRuntime(config: sandbox.config)
        let pass = Task { await sandbox.reconciler(runtime: runtime).pass() }
        var app: AppSupervisor?
        // The pass reaches the reload after its fetch and build (a minute at most on a loaded CI machine).
        for _ in 0..<6_000 where app == nil {
            app = await runtime.supervisor.existing(AppName("demo")!)
            try await Task.sleep(for: .milliseconds(10))
        }
        let supervisor = try #require(app)
        try await Task.sleep(for: .milliseconds(300))
        let before = await supervisor.monitorRounds
        try await Task.sleep(for: .seconds(1.5))
        let rounds = await supervisor.monitorRounds - before
        #expect(rounds <= 3, "the monitor looked \(rounds) times in 1.5 s while a rollout held the app")
        _ = await pass.value
        await runtime.supervisor.stopAll()
    }
}
