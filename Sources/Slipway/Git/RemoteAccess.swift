import CGit2
import Foundation
import Synchronization
import SlipwayCore

/// How the agent reaches remotes: `git:` from agent.yaml, and what to tell when a host key changed.
public struct RemoteAccess: Sendable {
    public let git: GitConfig
    /// Where the CA bundle for `git.ca_file` is written.
    let stateDir: String
    /// Called with `host:port` when a server's host key differs from known_hosts.
    var onHostKeyChanged: @Sendable (String) -> Void
    /// Called once per connection made (for the connections-per-pass metric).
    var onConnected: @Sendable (RemoteURL) -> Void
    /// Called when a connection downloaded (a tip had moved).
    var onFetched: @Sendable (RemoteURL) -> Void = { _ in }

    public init(git: GitConfig, stateDir: String, onHostKeyChanged: @escaping @Sendable (String) -> Void = { _ in },
                onConnected: @escaping @Sendable (RemoteURL) -> Void = { _ in },
                onFetched: @escaping @Sendable (RemoteURL) -> Void = { _ in }) {
        self.git = git
        self.stateDir = stateDir
        self.onHostKeyChanged = onHostKeyChanged
        self.onConnected = onConnected
        self.onFetched = onFetched
    }

    /// libgit2's mbedTLS replaces its CA chain with the file it is given, so `git.ca_file` is
    /// appended to the system store in a bundle of its own: a private CA adds to the public ones.
    /// Process-wide (libgit2's setting is), done once per distinct ca_file.
    func installCertificateAuthority() -> String? {
        guard let caFile = git.caFile else { return nil }
        return Self.installed.withLock { installed -> String? in
            if installed == caFile { return nil }
            guard let extra = FileManager.default.contents(atPath: caFile) else {
                return "cannot read \(caFile) (git.ca_file)"
            }
            let system = FileManager.default.contents(atPath: "/etc/ssl/certs/ca-certificates.crt") ?? Data()
            let bundle = stateDir + "/git-ca-bundle.pem"
            do {
                try FileManager.default.createDirectory(atPath: stateDir, withIntermediateDirectories: true)
                try (system + Data("\n".utf8) + extra).write(to: URL(fileURLWithPath: bundle), options: .atomic)
            } catch {
                return "cannot write \(bundle) for git.ca_file: \(error.localizedDescription)"
            }
            LibGit2.ensureInitialised()
            guard slipway_git_set_ssl_cert_file(bundle) == 0 else {
                return "libgit2 refused the CA bundle made from \(caFile): \(GitError.last("", code: -1).message)"
            }
            installed = caFile
            return nil
        }
    }

    private static let installed = Mutex<String?>(nil)

    /// The defaults (`git:` absent), for local paths and tests.
    public static let anonymous = RemoteAccess(git: GitConfig(), stateDir: "")
}
