import ArgumentParser
import Foundation
import Logging
import Slipway
import SlipwayCore

struct ApplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Confirm a manifests commit that removes most of this host's apps.",
        discussion: """
        A commit that removes more than half of the apps this host runs (a deleted manifests \
        folder, a wrong 'hosts:') is not applied: every app keeps serving, 'slipway status' says \
        which commit waits, and slipway_removals_held counts its apps. If the removals are meant, \
        confirm that commit here (its id, or a prefix of 7 or more): the agent then removes the \
        apps after removal_grace, as any removal. A later commit that restores them needs nothing.
        """
    )

    @Option(name: .customLong("allow-removals"), help: ArgumentHelp("The manifests commit whose removals to apply.", valueName: "commit"))
    var commit: String

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        try await Self.reporting {
            let config = try options.load()
            let commit = commit.lowercased()
            guard RemovalPolicy.isCommitPrefix(commit) else {
                throw CLIError("'\(self.commit)' is not a commit id; give the id 'slipway status' shows (7 to 40 hex digits)")
            }
            let state = StateFile(stateDir: config.stateDir).load()
            if let held = state.heldRemoval, !RemovalPolicy.confirms(commit, held.commit) {
                print("note: the commit held now is \(held.commit.prefix(12)), not \(commit); confirming \(commit) anyway")
            }
            try await OperatorRequests.send(.init(app: nil, kind: "allow-removals", argument: commit), config: config)
            if let pid = AgentLock.holder(stateDir: config.stateDir) {
                if (try? await AgentClient(endpoint: .unix(path: config.socketPath)).request(.POST, "/v1/pass")) == nil {
                    kill(pid, SIGHUP)
                }
                let clock = ContinuousClock()
                let deadline = clock.now + .seconds(60)
                while Reconciler.removalConfirmationPending(stateDir: config.stateDir) {
                    guard clock.now < deadline else { throw CLIError("the agent has not picked the confirmation up yet; it stays queued") }
                    try await Task.sleep(for: .milliseconds(100))
                }
                try await Task.sleep(for: .milliseconds(200))
            } else {
                SlipwayLogHandler.bootstrap(level: .warning)
                let lock = try config.acquireLock()
                defer { withExtendedLifetime(lock) {} }
                _ = await Reconciler(config: config, logger: Logger(label: "slipway.cli")).pass()
            }
            print("removals of manifests commit \(commit) allowed: the apps it removes go after removal_grace (\(DurationText.format(config.removalGrace)))")
        }
    }
}
