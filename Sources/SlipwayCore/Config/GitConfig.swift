/// agent.yaml's `git:` section: how the agent logs in to remotes and which servers it trusts.
public struct GitConfig: Sendable, Equatable {
    /// The SSH key used for every ssh remote no credential entry names another key for.
    public var sshIdentity: String = GitConfig.defaultIdentity
    /// Host keys the agent trusts, OpenSSH format; checked by Slipway itself, strictly.
    public var knownHosts: String = GitConfig.defaultKnownHosts
    /// An extra CA certificate (PEM) for https remotes, on top of the system store.
    public var caFile: String?
    public var credentials: [Credential] = []

    public static let defaultIdentity = "/etc/slipway/ssh/id_ed25519"
    public static let defaultKnownHosts = "/etc/slipway/ssh/known_hosts"

    /// One `git.credentials` entry: remotes whose URL starts with `url` log in with it.
    public struct Credential: Sendable, Equatable {
        public var url: String
        public var username: String?
        /// A file holding the token or password on its first line; the secret itself is never in memory longer than a login.
        public var passwordFile: String?
        public var identity: String?
        /// Its position in `git.credentials` (0-based), so messages can name it.
        public var index: Int

        /// `git.credentials[1] (https://git.example.com/)`: names the entry, never its secret.
        public var label: String { "git.credentials[\(index)] (\(url))" }

        var matchPrefix: String { RemoteURL(url)?.canonical ?? url }
    }

    public init() {}

    /// The entry for `remote`: the longest `url` prefix that matches it at a boundary.
    public func credential(for remote: RemoteURL) -> Credential? {
        let target = remote.canonical
        return credentials.filter { entry in
            let prefix = entry.matchPrefix
            guard target.hasPrefix(prefix) else { return false }
            if prefix.hasSuffix("/") || prefix.hasSuffix(":") || target.count == prefix.count { return true }
            let next = target[target.index(target.startIndex, offsetBy: prefix.count)]
            return next == "/" || next == ":"
        }.max { $0.matchPrefix.count < $1.matchPrefix.count }
    }

    /// The key an ssh remote logs in with.
    public func identity(for remote: RemoteURL) -> String {
        credential(for: remote)?.identity ?? sshIdentity
    }

    static func decode(_ node: YAMLNode, reader: FieldReader) -> GitConfig {
        var config = GitConfig()
        guard let fields = reader.fields(of: node, named: "git", known: ["ssh", "ca_file", "credentials", "local_roots"]) else { return config }
        func absolutePath(_ node: YAMLNode, _ what: String, example: String) -> String? {
            guard let text = reader.nonEmptyString(node, what) else { return nil }
            guard text.hasPrefix("/"), !text.split(separator: "/").contains("..") else {
                reader.report("\(what) must be an absolute path without '..', not '\(text)'", at: node.mark, hint: "for example \(example)")
                return nil
            }
            return text
        }
        if let sshNode = fields["ssh"], let ssh = reader.fields(of: sshNode, named: "git.ssh", known: ["identity", "known_hosts"]) {
            if let path = ssh["identity"].flatMap({ absolutePath($0, "git.ssh.identity", example: defaultIdentity) }) { config.sshIdentity = path }
            if let path = ssh["known_hosts"].flatMap({ absolutePath($0, "git.ssh.known_hosts", example: defaultKnownHosts) }) { config.knownHosts = path }
        }
        config.caFile = fields["ca_file"].flatMap { absolutePath($0, "git.ca_file", example: "/etc/slipway/git-ca.pem") }
        guard let listNode = fields["credentials"] else { return config }
        guard case .sequence(let items) = listNode.content else {
            reader.report("git.credentials must be a list of entries, not \(listNode.kindDescription)", at: listNode.mark,
                          hint: "write '- url: https://git.example.com/' entries with username and password_file, or identity")
            return config
        }
        var seen: Set<String> = []
        for (index, item) in items.enumerated() {
            guard let entry = reader.fields(of: item, named: "a git.credentials entry", known: ["url", "username", "password_file", "identity"]),
                  let urlNode = entry.required("url", example: "https://git.example.com/"),
                  let url = reader.nonEmptyString(urlNode, "git.credentials url") else { continue }
            let what = "git.credentials[\(index)]"
            let scheme = url.hasPrefix("https://") || url.hasPrefix("http://") ? "http" : url.hasPrefix("ssh://") || url.contains("@") ? "ssh" : nil
            guard let scheme else {
                reader.report("\(what) url '\(url)' is neither an https:// nor an ssh:// prefix", at: urlNode.mark,
                              hint: "for example https://git.example.com/ or ssh://git@git.internal:2222/")
                continue
            }
            if let parsed = RemoteURL(url), parsed.carriesSecret {
                reader.report("\(what) url carries credentials; put them in username and password_file instead", at: urlNode.mark)
                continue
            }
            if !seen.insert(RemoteURL(url)?.canonical ?? url).inserted {
                reader.report("\(what) url '\(url)' is listed twice", at: urlNode.mark)
            }
            var credential = Credential(url: url, index: index)
            credential.username = entry["username"].flatMap { reader.nonEmptyString($0, "\(what).username") }
            credential.passwordFile = entry["password_file"].flatMap { absolutePath($0, "\(what).password_file", example: "/etc/slipway/git-token") }
            credential.identity = entry["identity"].flatMap { absolutePath($0, "\(what).identity", example: "/etc/slipway/ssh/internal_ed25519") }
            if scheme == "http" {
                if credential.identity != nil, let node = entry["identity"] {
                    reader.report("\(what) is for an https URL, which logs in with username and password_file, not an SSH identity", at: node.mark)
                }
                if credential.username == nil || credential.passwordFile == nil {
                    reader.report("\(what) needs both 'username' and 'password_file' for an https URL", at: item.mark,
                                  hint: "password_file is a file holding the token or password on one line, for example /etc/slipway/git-token")
                }
            } else {
                if let node = entry["password_file"] {
                    reader.report("\(what) is for an ssh URL, which logs in with an 'identity' key file, not a password", at: node.mark,
                                  hint: "for example identity: /etc/slipway/ssh/internal_ed25519")
                }
                if credential.identity == nil && credential.username == nil {
                    reader.report("\(what) for an ssh URL needs an 'identity' (a key file)", at: item.mark,
                                  hint: "for example identity: /etc/slipway/ssh/internal_ed25519")
                }
            }
            config.credentials.append(credential)
        }
        return config
    }
}
