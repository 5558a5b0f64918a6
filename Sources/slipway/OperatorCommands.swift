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
        try requests.submit(request)
        if let pid = AgentLock.holder(stateDir: config.stateDir) {
            kill(pid, SIGHUP)
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
        let lock: AgentLock
        do {
            lock = try AgentLock.acquire(stateDir: config.stateDir)
        } catch let held as AgentLock.Held {
            throw CLIError(held.description)
        }
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
        abstract: "Deploy an app now, retrying once a deploy that failed before.",
        discussion: """
        A failed deploy is not retried on every pass (that would rebuild a broken commit forever): \
        it waits for the manifest or source to change. This command asks for one more try of the \
        same desired state. With an agent running it wakes the agent; with none, it runs a pass here.
        """
    )

    @Argument(help: "The app's name.")
    var app: String

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        try await Self.reporting {
            let config = try options.load()
            guard let name = AppName(app) else { throw CLIError("'\(app)' is not a valid app name") }
            var offlineResult: PassResult?
            try await OperatorChannel.submit(.init(app: name, kind: .deploy, argument: nil), config: config, timeout: .seconds(30)) { reconciler in
                offlineResult = await reconciler.pass()
            }
            if offlineResult == nil {
                // The agent took the request; wait for the pass that acts on it to finish.
                let before = UTCTime.now
                while (StateFile(stateDir: config.stateDir).load().lastPass?.finishedAt ?? before) <= before {
                    try await Task.sleep(for: .milliseconds(200))
                }
            }
            guard let status = OperatorChannel.appStatus(name, config: config) else { throw CLIError("no app named \(name) is known here") }
            print("\(name): \(status.condition.rawValue)\(status.current.map { ", current \($0)" } ?? "")")
            if !status.isSettled { throw CLIError(status.message ?? status.condition.rawValue) }
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
        """
    )

    @Argument(help: "The app's name.")
    var app: String

    @Option(help: ArgumentHelp("The release id to go to (default: the previous good release).", valueName: "id"))
    var to: String?

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        try await Self.reporting {
            let config = try options.load()
            guard let name = AppName(app) else { throw CLIError("'\(app)' is not a valid app name") }
            let asked = UTCTime.now
            try await OperatorChannel.submit(.init(app: name, kind: .rollback, argument: to), config: config, timeout: .seconds(60)) { reconciler in
                reconciler.applyPendingRequests()
            }
            guard let status = OperatorChannel.appStatus(name, config: config) else { throw CLIError("no app named \(name) is known here") }
            guard status.condition == .pinned, let pin = status.memory.pin, pin.at >= asked, to == nil || pin.release.description == to else {
                throw CLIError(status.message ?? "rollback did not happen")
            }
            print("\(name): current is now \(pin.release), pinned until the manifest changes")
        }
    }
}
