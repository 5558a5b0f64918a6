import Foundation
import Logging
import ServiceLifecycle
import UnixSignals
import SlipwayCore

/// The agent's pass loop, the first of its services to stop: a pass at start, then one per
/// `poll_interval`, or whenever woken (a push notification, `slipway deploy`, SIGHUP). Wake-ups
/// that arrive during a pass coalesce into one more pass. SIGUSR2 re-executes the agent in
/// place (PassLoop+Reexec). On graceful shutdown the pass in flight is cancelled: a running
/// build is stopped, its staging removed, and `current` stays where it was; the hooks, the
/// workers and the API stop after it (`AgentServices`).
public struct PassLoop: Service {
    let runtime: AgentRuntime
    let logger: Logger
    let systemd: SystemdNotifier

    public init(runtime: AgentRuntime, logger: Logger, systemd: SystemdNotifier) {
        self.runtime = runtime
        self.logger = logger
        self.systemd = systemd
    }

    public func run() async throws {
        let reconciler = Reconciler(config: runtime.config, logger: logger, runtime: runtime)
        let executor = PassExecutor()
        let ticker = Task { [runtime] in
            while !Task.isCancelled {
                try? await Task.sleep(for: runtime.config.pollInterval)
                runtime.wake()
            }
        }
        defer { ticker.cancel() }

        // SIGHUP starts a pass; SIGUSR2 re-executes the agent in place, keeping every worker (issue
        // 19). Both through one UnixSignalsSequence; ignored at once, so one that arrives before
        // the sequence is set up is lost rather than fatal.
        signal(SIGHUP, SIG_IGN)
        signal(SIGUSR2, SIG_IGN)
        let signals = Task { [runtime] in
            for await caught in await UnixSignalsSequence(trapping: .sighup, .sigusr2) {
                if caught == .sigusr2 { runtime.requestReexec() } else { runtime.wake() }
            }
        }
        defer { signals.cancel() }

        runtime.wake()
        var ready = false
        if runtime.tookOver.withLock({ $0 }) {
            // MAINPID is unchanged; systemd hears READY=1 again once the workers are ours.
            systemd.send([("READY", "1"), ("STATUS", String(runtime.image.withLock { $0.summary }.prefix(200)))])
            ready = true
        }
        var timer: Task<Void, Never>?
        defer { timer?.cancel() }
        for await _ in runtime.wakeups.cancelOnGracefulShutdown() {
            if let requested = runtime.reexecRequest.withLock({ $0 }) {
                // Returns only when the re-exec did not happen: this image goes on.
                await reexec(requestedAt: requested, reconciler: reconciler, executor: executor)
                runtime.reexecRequest.withLock { $0 = nil }
                ready = true
                runtime.wake()
                continue
            }
            let pass = Task { await withTaskExecutorPreference(executor) { await reconciler.pass() } }
            runtime.currentPass.withLock { $0 = pass }
            let result = await cancelWhenGracefulShutdown {
                await withTaskCancellationHandler { await pass.value } onCancel: { pass.cancel() }
            }
            runtime.currentPass.withLock { $0 = nil }
            if runtime.reexecRequest.withLock({ $0 }) != nil {
                runtime.wake()
                continue
            }
            let summary: String
            if result.converged {
                logger.debug("pass converged")
                summary = "converged"
            } else if let error = result.error {
                logger.warning("pass failed: \(error)")
                summary = "last pass failed: \(error)"
            } else {
                let apps = result.unsettled.map { "\($0.app)" }.joined(separator: ", ")
                logger.warning("pass left \(result.unsettled.count) app(s) unsettled: \(apps)")
                summary = "unsettled: \(apps)"
            }
            // A removal whose grace ends before the next poll gets a pass of its own then.
            timer?.cancel()
            if let delay = result.nextPassIn, delay < runtime.config.pollInterval {
                timer = Task { [runtime] in
                    guard (try? await Task.sleep(for: delay)) != nil else { return }
                    runtime.wake()
                }
            }
            // Ready once the first pass is over, however it went: `systemctl start` returns then.
            systemd.send((ready ? [] : [("READY", "1")]) + [("STATUS", String(summary.prefix(200)))])
            ready = true
        }
        runtime.beginStopping()
        systemd.send([("STOPPING", "1"), ("STATUS", "stopping: passes are over")])
        logger.info("passes stopped")
    }
}
