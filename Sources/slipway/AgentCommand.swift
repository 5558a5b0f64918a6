import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import Slipway
import SlipwayCore

struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Run the deploy agent for this host.",
        discussion: """
        Each pass fetches the manifests branch, and for every app this host runs whose declared \
        state differs from its current release: fetch, build, expand, switch, reload, verify, \
        contract, prune (each stage runs when the manifest asks for it). Runs until SIGTERM \
        or SIGINT (a build in progress is stopped and its staging removed; 'current' is untouched). \
        SIGHUP starts a pass now. SIGUSR2 re-executes the agent in place (the binary now at its \
        path, e.g. after an upgrade): the pass in progress is cancelled, every worker keeps \
        running and is taken over by the new image; a new binary that cannot take them over is \
        refused, and the old image goes on. Only one agent may use a state directory.
        """
    )

    @OptionGroup var options: ConfigOptions

    @Flag(help: "Do one pass and exit: 0 when every app this host runs has converged, 1 otherwise (naming each app and why).")
    var once = false

    @Option(help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error.", valueName: "level"))
    var logLevel: String = "info"

    @Flag(help: .hidden)
    var handoverCheck = false

    func run() async throws {
        if handoverCheck {
            // Asked by a running agent before it re-executes into this binary (issue 19).
            print(Reexec.handoverCheckAnswer)
            return
        }
        try await Self.reporting {
            // Issue 19: a re-exec's new image takes over what the previous image left.
            let incoming = Reexec.Incoming.take()
            SlipwayLogHandler.bootstrap(level: Logger.Level(rawValue: logLevel) ?? .info)
            var config = try options.load()
            let logger = Logger(label: "slipway.agent")
            let lock = try config.acquireLock()
            defer { withExtendedLifetime(lock) {} }
            AgentRuntime.sweepLeftovers(stateDir: config.stateDir, logger: logger)

            if once {
                let reconciler = Reconciler(config: config, logger: logger)
                let result = await reconciler.pass()
                await reconciler.waitForHooks()
                if let error = result.error { throw CLIError("pass failed: \(error)") }
                guard result.converged else {
                    let lines = result.unsettled.map { "  \($0.app): \($0.reason.replacingOccurrences(of: "\n", with: "\n    "))" }
                    throw CLIError("not converged:\n" + lines.joined(separator: "\n"))
                }
                // Nothing is left to run: the process ends here, not after the async main's hop
                // back to the main thread (a thread started only to exit, 1 to 5 ms).
                Foundation.exit(0)
            }
            logger.info("agent starting", metadata: ["host": "\(config.host)", "manifests": "\(config.manifests.repo)",
                                                     "branch": "\(config.manifests.branch)", "pid": "\(getpid())"])
            let handover = incoming.map { incoming in Result { try incoming.load() } }
            if case .success(let record)? = handover, config.listen?.port == 0, let port = record.apiPort { config.listen?.port = port }
            let runtime = AgentRuntime(config: config, image: AgentImage(version: SlipwayCommand.version))
            // The pass loop takes the workers over while the API binds again.
            runtime.prepare(incoming: incoming, handover: handover)
            // Passes stop first on SIGTERM, the API last (see AgentServices).
            let services = AgentServices.ordered(runtime: runtime, logger: logger)
            let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
        }
    }
}
