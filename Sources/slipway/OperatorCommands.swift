import ArgumentParser
import Foundation
import Logging
import Slipway
import SlipwayCore

/// How `deploy` and `rollback` reach the agent: queue the request, then either wake the running
/// agent (SIGHUP) and wait for it to act, or, with no agent running, act here under the lock.
enum OperatorChannel {
    static func submit(_ request: OperatorRequests.Request, config: AgentConfig, timeout: Duration,
                       offline: (Reconciler) async throws -> Void) async throws {
        let requests = OperatorRequests(stateDir: config.stateDir)
        try await OperatorRequests.send(.init(app: request.app.value, kind: request.kind.rawValue, argument: request.argument,
                                              force: request.force), config: config)
        if let pid = AgentLock.holder(stateDir: config.stateDir) {
            // Wake the agent through its socket; SIGHUP when the socket does not answer.
            if (try? await AgentClient(endpoint: .unix(path: config.socketPath)).request(.POST, "/v1/pass")) == nil {
                kill(pid, SIGHUP)
            }
            print("asked the running agent (pid \(pid)) to \(request.kind.rawValue) \(request.app); waiting…")
            let clock = ContinuousClock()
            let deadline = clock.now + timeout
            while requests.isPending(request.app, request.kind) {
                guard clock.now < deadline else { throw CLIError("the agent has not picked the request up yet; it stays queued") }
                try await Task.sleep(for: .milliseconds(100))
            }
            return
        }
        SlipwayLogHandler.bootstrap(level: .info)
        let lock = try config.acquireLock()
        defer { withExtendedLifetime(lock) {} }
        try await offline(Reconciler(config: config, logger: Logger(label: "slipway.cli")))
    }

    static func appStatus(_ app: AppName, config: AgentConfig) -> AppStatus? {
        StateFile(stateDir: config.stateDir).load().apps[app.value]
    }
}

struct DeployCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy",
        abstract: "Start a pass now and, with --wait, follow it stage by stage.",
        discussion: """
        With an APP, a deploy of it that failed before is tried once more (a failed deploy is not \
        retried on every pass: that would rebuild a broken commit forever; it waits for the manifest \
        or source to change, or for this command). With an agent running, this wakes it through its \
        unix socket; with none, the pass runs here. --wait follows the pass live (fetch, build, \
        switch, prune, with elapsed times) and exits 1 when the deploy fails.
        """
    )

    @Argument(help: "The app to deploy (default: every app).")
    var app: String?

    @OptionGroup var options: ConfigOptions

    @Flag(help: "Follow the pass live and exit non-zero when it fails.")
    var wait = false

    @Flag(help: "With --wait, show the build's output as it is written.")
    var logs = false

    func run() async throws {
        try await Self.reporting {
            let config = try options.load()
            var name: AppName?
            if let app {
                let valid = try AppName.argument(app)
                name = valid
                try await OperatorRequests.send(.init(app: valid.value, kind: "deploy"), config: config)
            }
            let follower = DeployFollower(app: app, logs: logs)
            if AgentLock.holder(stateDir: config.stateDir) != nil {
                let client = AgentClient(endpoint: .unix(path: config.socketPath), timeout: .seconds(6 * 3600))
                guard wait else {
                    _ = try await AgentClient(endpoint: .unix(path: config.socketPath)).request(.POST, "/v1/pass")
                    print("the agent starts a pass now; follow it with 'slipway deploy --wait' or 'slipway status'")
                    return
                }
                let stream = Task { try await client.request(.GET, "/v1/events", onBody: { follower.feed($0) }) }
                defer { stream.cancel() }
                await follower.waitUntilSubscribed()
                _ = try await AgentClient(endpoint: .unix(path: config.socketPath)).request(.POST, "/v1/pass")
                await follower.waitUntilFinished()
            } else {
                SlipwayLogHandler.bootstrap(level: wait ? .warning : .info)
                let lock = try config.acquireLock()
                defer { withExtendedLifetime(lock) {} }
                let reconciler = Reconciler(config: config, logger: Logger(label: "slipway.cli"))
                let offline = DeployFollower(app: app, logs: logs, followImmediately: true)
                if wait { reconciler.onEvent = { offline.handle($0) } }
                _ = await reconciler.pass()
                await reconciler.waitForHooks()
                if wait && offline.failed { throw ExitCode(1) }
            }
            if wait && follower.failed { throw ExitCode(1) }
            if let name, let status = OperatorChannel.appStatus(name, config: config) {
                if !wait { print("\(name): \(status.condition.rawValue)\(status.current.map { ", current \($0)" } ?? "")") }
                if !status.isSettled { throw CLIError(status.message ?? status.condition.rawValue) }
            }
        }
    }
}

struct RollbackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Switch an app back to its previous (or a given) release and pin it there.",
        discussion: """
        The pin holds until the app's desired state changes (a manifest edit or a new source \
        commit); 'slipway status' shows it and why. 'slipway releases APP' lists the ids.

        A release older than the last one whose migrate.contract step ran is refused: the \
        contract may have dropped a column or table that the older code still reads, and \
        switching to it would trade a bad release for errors on every request. Deploy a fix \
        forward instead, or pass --force when you know the older release works with today's \
        schema. Rollbacks never run expand or contract.
        """
    )

    @Argument(help: "The app's name.")
    var app: String

    @Option(help: ArgumentHelp("The release id to go to (default: the previous good release).", valueName: "id"))
    var to: String?

    @Flag(help: "Go back past a release whose migrate.contract step ran (the schema may no longer fit the older code).")
    var force = false

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        try await Self.reporting {
            let config = try options.load()
            let name = try AppName.argument(app)
            let asked = UTCTime.now
            try await OperatorChannel.submit(.init(app: name, kind: .rollback, argument: to, force: force), config: config, timeout: .seconds(60)) { reconciler in
                await reconciler.applyPendingRequests()
            }
            guard let status = OperatorChannel.appStatus(name, config: config) else { throw CLIError("no app named \(name) is known here") }
            guard status.condition == .pinned, let pin = status.memory.pin, pin.at >= asked, to == nil || pin.release.description == to else {
                throw CLIError(status.lastRequest ?? status.message ?? "rollback did not happen")
            }
            print("\(name): current is now \(pin.release), pinned until the manifest changes")
        }
    }
}
