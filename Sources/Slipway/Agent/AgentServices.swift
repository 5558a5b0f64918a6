import Logging
import ServiceLifecycle

/// The agent's services, in the order a `ServiceGroup` needs: it starts them in this order and
/// on SIGTERM stops them in reverse, each once the one after it has finished. So passes stop
/// first (a build is cancelled, `current` untouched), then the `on_deploy` hooks still running,
/// then the workers drain (each within its stop timeout), and the HTTP API and the CLI socket
/// close last: `/healthz` and `slipway status` (saying "stopping") answer the whole drain.
public enum AgentServices {
    public static func ordered(runtime: AgentRuntime, logger: Logger) -> [ServiceGroupConfiguration.ServiceConfiguration] {
        // One notifier: it takes NOTIFY_SOCKET out of the environment as it is made.
        let systemd = SystemdNotifier()
        return AgentAPI.services(runtime: runtime, logger: logger).map { .init(service: $0) }
            + [.init(service: WorkerDrain(runtime: runtime, logger: logger, systemd: systemd)),
               .init(service: HookDrain(runtime: runtime)),
               // The loop ends only on shutdown; if it ever ends otherwise, the rest stop in order.
               .init(service: PassLoop(runtime: runtime, logger: logger, systemd: systemd), successTerminationBehavior: .gracefullyShutdownGroup)]
    }

    /// Stops the `on_deploy` hooks still running when the agent stops (their commands get
    /// SIGTERM, then SIGKILL); until then it only waits.
    struct HookDrain: Service {
        let runtime: AgentRuntime

        func run() async throws {
            try? await gracefulShutdown()
            await runtime.hooks.stopAll()
            try? runtime.metrics.write(stateDir: runtime.config.stateDir)
        }
    }

    /// Drains every app's workers when the agent stops, all at once, each within its stop
    /// timeout; until then the workers are the supervisor's and this only waits.
    struct WorkerDrain: Service {
        let runtime: AgentRuntime
        let logger: Logger
        let systemd: SystemdNotifier

        func run() async throws {
            try? await gracefulShutdown()
            systemd.send([("STATUS", "stopping: draining workers")])
            await runtime.supervisor.stopAll()
            logger.info("agent stopped")
        }
    }
}
