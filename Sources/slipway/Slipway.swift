import ArgumentParser
import CVersionStamp
import Slipway
import SlipwayCore

@main
struct SlipwayCommand: AsyncParsableCommand {
    /// The upstream version, or the package's once packaging/build-deb stamped it (0.1.0-2).
    static let version = String(cString: slipway_version())

    /// A running agent asks the binary it is about to re-execute into `agent --handover-check`
    /// and waits for the answer (issue 19): it is given before the command line is parsed.
    static func main() async {
        if CommandLine.arguments.dropFirst().elementsEqual(["agent", "--handover-check"]) {
            print(Reexec.handoverCheckAnswer)
            return
        }
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.first == "agent" {
            // The agent reads git from its first step: libgit2's init (the CA bundle) overlaps the parsing.
            LibGit2.initialiseInBackground()
            // `agent …` parsed as a command of its own: the whole tree of subcommands is not
            // built for it (4 to 5 ms of `agent --once`). Help, errors and anything it does not
            // take go the ordinary way below, so they read exactly as they always do.
            if let command = try? AgentCommand.parse(Array(arguments.dropFirst())) {
                do {
                    try await command.run()
                } catch {
                    AgentCommand.exit(withError: error)
                }
                return
            }
        }
        await main(nil)
    }

    static let configuration = CommandConfiguration(
        commandName: "slipway",
        abstract: "Git-triggered deploys for bare Linux servers.",
        discussion: """
        Slipway watches a git repo of YAML manifests (one app per file) and makes this host run what \
        they declare: it fetches each app's source commit, builds it into a new timestamped release, \
        runs its expand migration, switches the app's 'current' symlink atomically, rolls the \
        backend's workers onto it one at a time, verifies their health (switching back when it \
        fails), runs the contract migration and prunes old releases.

        Start here: 'slipway validate manifests/' before you push, 'slipway status' on a host. \
        The agent's configuration is /etc/slipway/agent.yaml; it runs as the systemd unit \
        slipway.service. Guides: /usr/share/doc/slipway/.
        """,
        version: version,
        subcommands: [
            AgentCommand.self, ValidateCommand.self, StatusCommand.self, ReleasesCommand.self,
            DeployCommand.self, RollbackCommand.self, ReloadCommand.self, ApplyCommand.self, LogsCommand.self, TrustCommand.self, NotifyCommand.self,
            CheckCommand.self, KeyCommand.self, CacheCommand.self,
        ]
    )
}
