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
    func commitWorkers(_ sandbox: PassSandbox, command: String, port: Int) throws {
        try sandbox.commitSource(["worker.sh": "#!/bin/sh\n" + command + "\n"])
        try sandbox.commitManifests(["manifests/demo.yaml": """
        app: demo
        source: {repo: \(sandbox.source), ref: main}
        backend:
          command: /bin/sh worker.sh
          instances: 1
          listen: 127.0.0.1:\(port)
          ready: {notify: true, timeout: 3s}
          stop: {signal: SIGTERM, timeout: 2s}
        """])
    }

    @Test func aFailedFirstStartLeavesAMonitorThatSleeps() async throws {
        let sandbox = try PassSandbox()
        try commitWorkers(sandbox, command: "exit 3", port: try Self.freePort())
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
        try commitWorkers(sandbox, command: "exec sleep 30", port: try Self.freePort())
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

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw SandboxError("no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
