/// The agent's own settings (`/etc/slipway/agent.yaml`): which repo of manifests it follows,
/// where it keeps apps and state, how often it polls.
public struct AgentConfig: Sendable, Equatable {
    public var host: String
    public var manifests: ManifestsSource
    public var appsRoot: String
    public var stateDir: String
    public var pollInterval: Duration

    public struct ManifestsSource: Sendable, Equatable {
        public var repo: String
        public var branch: String
        /// The folder of the repo that holds manifests; root for the whole repo.
        public var path: RelativePath
        /// Signature checks; nil means commits are not verified (and `status` says so).
        public var verify: Verification?

        public init(repo: String, branch: String = "main", path: RelativePath = RelativePath("manifests")!, verify: Verification? = nil) {
            self.repo = repo
            self.branch = branch
            self.path = path
            self.verify = verify
        }
    }

    /// `manifests.verify`: which keys may sign the manifests branch (and, with `sources`, each app's source commit).
    public struct Verification: Sendable, Equatable {
        public var allowedSigners: String
        public var sources: Bool
    }

    public static let defaultPath = "/etc/slipway/agent.yaml"
    public static let defaultAppsRoot = "/var/lib/slipway/apps"
    public static let defaultStateDir = "/var/lib/slipway/state"
    public static let defaultPollInterval = Duration.seconds(30)

    public init(host: String, manifests: ManifestsSource, appsRoot: String = AgentConfig.defaultAppsRoot,
                stateDir: String = AgentConfig.defaultStateDir, pollInterval: Duration = AgentConfig.defaultPollInterval) {
        self.host = host
        self.manifests = manifests
        self.appsRoot = appsRoot
        self.stateDir = stateDir
        self.pollInterval = pollInterval
    }

    /// Parses and validates agent.yaml. `hostname` is the machine's name, the default for `host`.
    public static func decode(_ text: String, file: String, hostname: String) -> Result<AgentConfig, Diagnostics> {
        let root: YAMLNode
        do {
            root = try YAMLParser().parse(text)
        } catch {
            return .failure(Diagnostics([Diagnostic(file: file, at: error.mark, error.message)]))
        }
        let reader = FieldReader(file: file)
        let config = decode(root, reader: reader, hostname: hostname)
        if let config, reader.diagnostics.isEmpty { return .success(config) }
        return .failure(Diagnostics(reader.diagnostics))
    }

    static func decode(_ root: YAMLNode, reader: FieldReader, hostname: String) -> AgentConfig? {
        guard let top = reader.fields(of: root, named: "the agent config",
                                      known: ["host", "manifests", "apps_root", "state_dir", "poll_interval"]) else { return nil }
        let host = top["host"].flatMap { reader.nonEmptyString($0, "host") } ?? hostname

        let manifests = top.required("manifests", example: "{repo: /srv/git/manifests.git}").flatMap { node -> ManifestsSource? in
            guard let fields = reader.fields(of: node, named: "manifests", known: ["repo", "branch", "path", "verify"]) else { return nil }
            let repo = fields.required("repo", example: "/srv/git/manifests.git").flatMap { node -> String? in
                guard let text = reader.nonEmptyString(node, "manifests.repo") else { return nil }
                guard SourceLocation.isAcceptable(text) else {
                    reader.report("manifests.repo '\(text)' is not a repository location Slipway can fetch", at: node.mark,
                                  hint: "use an absolute path, or a file://, https:// or ssh:// URL")
                    return nil
                }
                return text
            }
            var branch = "main"
            if let node = fields["branch"], let text = reader.nonEmptyString(node, "manifests.branch") {
                if GitRef.isValidName(text) { branch = text } else {
                    reader.report("manifests.branch '\(text)' is not a valid branch name", at: node.mark, hint: "for example 'main'")
                }
            }
            var path = RelativePath("manifests")!
            if let node = fields["path"], let value = reader.path(node, "manifests.path", allowRoot: true) {
                path = value
            }
            var verify: Verification?
            if let node = fields["verify"], let verifyFields = reader.fields(of: node, named: "manifests.verify", known: ["allowed_signers", "sources"]) {
                let signers = verifyFields.required("allowed_signers", example: "/etc/slipway/allowed_signers").flatMap { node -> String? in
                    guard let text = reader.nonEmptyString(node, "manifests.verify.allowed_signers") else { return nil }
                    guard text.hasPrefix("/") else {
                        reader.report("manifests.verify.allowed_signers must be an absolute path, not '\(text)'", at: node.mark,
                                      hint: "for example /etc/slipway/allowed_signers")
                        return nil
                    }
                    return text
                }
                let sources = verifyFields["sources"].flatMap { reader.bool($0, "manifests.verify.sources") } ?? false
                if let signers { verify = Verification(allowedSigners: signers, sources: sources) }
            }
            guard let repo else { return nil }
            return ManifestsSource(repo: repo, branch: branch, path: path, verify: verify)
        }

        func absolute(_ key: String, default value: String) -> String {
            guard let node = top[key], let text = reader.nonEmptyString(node, key) else { return value }
            guard text.hasPrefix("/"), !text.split(separator: "/").contains("..") else {
                reader.report("\(key) must be an absolute path without '..', not '\(text)'", at: node.mark, hint: "for example '\(value)'")
                return value
            }
            return text.count > 1 && text.hasSuffix("/") ? String(text.dropLast()) : text
        }
        let appsRoot = absolute("apps_root", default: defaultAppsRoot)
        let stateDir = absolute("state_dir", default: defaultStateDir)

        var pollInterval = defaultPollInterval
        if let node = top["poll_interval"], let value = reader.duration(node, "poll_interval", atLeast: .seconds(1)) {
            pollInterval = value
        }

        guard let manifests else { return nil }
        return AgentConfig(host: host, manifests: manifests, appsRoot: appsRoot, stateDir: stateDir, pollInterval: pollInterval)
    }
}
