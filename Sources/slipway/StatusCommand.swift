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
            let report = StatusReport.build(config: try options.load())
            print(json ? try report.json() : report.text(now: .now))
        }
    }
}
