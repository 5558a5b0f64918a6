import ArgumentParser
import Foundation
import Slipway

struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check this host's setup: config, git remotes, accounts, nginx, disk.",
        discussion: """
        The first command to run after installing. Reads the config, then reaches every remote \
        (the manifests repo and each app's source) with the configured credentials and host keys, \
        checks the accounts builds run as, env_dir, nginx's test command and free disk under \
        apps_root and state_dir. Prints one line per check: 'ok', or FAIL with what is wrong and \
        what to do. Exits 1 if any check fails. Fetches nothing into the agent's own mirrors.
        """
    )

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        try await Self.reporting {
            let config = try options.load()
            let lines = HostCheck(config: config, configPath: options.config).run()
            for line in lines { print(line.text) }
            let failed = lines.filter { !$0.ok }.count
            if failed > 0 { throw CLIError("\(failed) check\(failed == 1 ? "" : "s") failed") }
        }
    }
}
