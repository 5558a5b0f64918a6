import ArgumentParser
import Foundation
import Slipway
import SlipwayCore

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show what each app declares, what runs, and what went wrong last.",
        discussion: "Reads the agent's state directory, so it works whether or not the agent is running."
    )

    @OptionGroup var options: ConfigOptions

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() async throws {
        try await Self.reporting {
            let config = try options.load()
            var report = StatusReport.build(config: config)
            // A running agent answers over its unix socket; without one, the state directory tells.
            if AgentLock.holder(stateDir: config.stateDir) != nil,
               let response = try? await AgentClient(endpoint: .unix(path: config.socketPath), timeout: .seconds(5)).request(.GET, "/v1/status"),
               response.status == 200,
               let live = try? JSONDecoder().decode(StatusReport.self, from: Data(response.body.utf8)) {
                report = live
            }
            print(json ? try report.json() : report.text(now: .now))
        }
    }
}
