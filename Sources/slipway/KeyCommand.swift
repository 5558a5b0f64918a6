import ArgumentParser
import Foundation
import SlipwayCore

struct KeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Print this host's public deploy key and its fingerprint.",
        discussion: """
        Prints the public half of git.ssh.identity (default /etc/slipway/ssh/id_ed25519, made by \
        the package on first install) on one line, ready to paste as a read-only deploy key or \
        into the git account's authorized_keys, and its SHA256 fingerprint on the next.
        """
    )

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        try await Self.reporting {
            let config = try options.load()
            let identity = config.git.sshIdentity
            guard let text = try? String(contentsOfFile: identity, encoding: .utf8) else {
                throw CLIError("cannot read \(identity) (git.ssh.identity); make one: ssh-keygen -t ed25519 -N '' -f \(identity)")
            }
            let kind = SSHIdentity.kind(ofPrivateKey: text)
            if let problem = SSHIdentity.problem(kind, path: identity) { throw CLIError(problem) }
            guard case .openSSH(let key) = kind else {
                throw CLIError("\(identity) is a PEM key: its public half is in \(identity).pub (ssh-keygen -y -f \(identity))")
            }
            print("\(key.openSSHText) slipway@\(config.host)")
            print(key.fingerprint)
        }
    }
}
