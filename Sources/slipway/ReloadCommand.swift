import ArgumentParser
import Foundation
import Slipway
import SlipwayCore

struct ReloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload",
        abstract: "Replace an app's workers one by one, with no request lost.",
        discussion: """
        A rolling reload: for each worker, a new one starts on the same release and socket, and \
        once it is ready (and healthy) the old one gets its stop signal. Use it after changing \
        something outside the manifest that the app reads only at start. An env_file change needs \
        no reload: the agent notices it on its next pass. Needs the running agent (it owns the \
        workers); exits 1 when the reload fails, and then the old workers keep serving.
        """
    )

    @Argument(help: "The app's name.")
    var app: String

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        try await Self.reporting {
            let config = try options.load()
            let name = try AppName.argument(app)
            guard AgentLock.holder(stateDir: config.stateDir) != nil else {
                throw CLIError("no agent is running with state in \(config.stateDir); workers run under 'slipway agent' (or the slipway service)")
            }
            let follower = DeployFollower(app: name.value, logs: false)
            let client = AgentClient(endpoint: .unix(path: config.socketPath), timeout: .seconds(6 * 3600))
            let stream = Task { try await client.request(.GET, "/v1/events", onBody: { follower.feed($0) }) }
            defer { stream.cancel() }
            await follower.waitUntilSubscribed()
            try await OperatorRequests.send(.init(app: name.value, kind: "reload"), config: config)
            _ = try await AgentClient(endpoint: .unix(path: config.socketPath)).request(.POST, "/v1/pass")
            await follower.waitUntilFinished()
            if follower.failed { throw ExitCode(1) }
        }
    }
}
