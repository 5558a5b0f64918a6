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

    /// A worker that passes its start (READY=1) and dies after the deploy, saying it binds its
    /// port itself, crash-loops: the crash loop names the port and the fix, as a failed start
    /// does (Node without the preload on a busy host: it dies after the 1 s settle).
    @Test func aCrashLoopNamesThePortTheWorkerBindsItself() async throws {
        let sandbox = try PassSandbox()
        try sandbox.commitSource(["worker.py": """
        import os, socket, sys, time
        address = os.environ["NOTIFY_SOCKET"]
        if address.startswith("@"):
            address = "\\0" + address[1:]
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.connect(address)
        notify.send(b"READY=1")
        # Dies only once the deploy is done (the test says so): a crash after the start.
        while not os.path.exists(sys.argv[1]):
            time.sleep(0.05)
        print("OSError: [Errno 98] Address already in use: ('0.0.0.0', 8123)", file=sys.stderr, flush=True)
        sys.exit(1)
        """])
        try sandbox.commitManifests(["manifests/demo.yaml": """
        app: demo
        source: {repo: \(sandbox.source), ref: main}
        backend:
          command: /usr/bin/python3 worker.py \(sandbox.root)/go
          instances: 1
          listen: 127.0.0.1:\(try PassSandbox.freePort())
          ready: {notify: true, timeout: 5s}
        """])
        let runtime = AgentRuntime(config: sandbox.config)
        _ = await sandbox.reconciler(runtime: runtime).pass()
        #expect(sandbox.status()?.condition == .converged, "\(String(describing: sandbox.status()))")
        // No `#require` before stopAll: a failure here must not leave the worker running.
        let app = await runtime.supervisor.existing(AppName("demo")!)
        #expect(app != nil, "the pass started no supervisor for demo")
        if let app {
            #expect(FileManager.default.createFile(atPath: sandbox.root + "/go", contents: nil))
            var reason = ""
            for _ in 0..<300 where !reason.contains("crash loop") {
                reason = await app.degradedReason ?? ""
                try? await Task.sleep(for: .milliseconds(100))
            }
            // 3 crashes make the loop; a poll delayed on a loaded host may see a 4th.
            #expect(reason.contains(try Regex("crash loop: worker 0 exited with status 1, [34] times in a row: it binds port 8123 itself \\(address already in use\\)")),
                    "\(reason)")
            #expect(reason.contains(AddressInUse.docs), "\(reason)")
        }
        await runtime.supervisor.stopAll()
    }
}
