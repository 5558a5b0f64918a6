/// The agent's own settings (`/etc/slipway/agent.yaml`): which repo of manifests it follows,
/// where it keeps apps and state, how often it polls.
public struct AgentConfig: Sendable, Equatable {
    public var host: String
    public var manifests: ManifestsSource
    public var appsRoot: String
    public var stateDir: String
    public var pollInterval: Duration
    /// The HTTP API's TCP address (`host:port`); nil when `listen: off`.
    public var listen: ListenAddress?
    /// The local CLI's unix socket.
    public var socketPath: String
    /// The shared secret's file for signed push notifications; nil: `POST /v1/notify` is refused.
    public var notifySecretFile: String?
    /// `api:`: connection budget and the token for status over TCP.
    public var api = API()
    /// `build_log_max`: the most a release's build log keeps (head and tail) however much its
    /// build and migrate steps write.
    public var buildLogMax: Int = AgentConfig.defaultBuildLogMax
    public static let defaultBuildLogMax = 32 << 20
    /// `removal_grace`: how long an app no longer declared for this host keeps its workers.
    public var removalGrace: Duration = AgentConfig.defaultRemovalGrace
    public static let defaultRemovalGrace = Duration.seconds(600)

    public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
        public var host: String
        public var port: Int

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        /// `127.0.0.1:7070`, `[::1]:7070`, `localhost:0` (0: any free port).
        public init?(_ text: String) {
            guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
            var host = String(text[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            guard !host.isEmpty, !host.contains(" ") else { return nil }
            self.init(host: host, port: port)
        }

        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    /// `apps_user`: one account shared by every app that names no `backend.user`, when the
    /// operator sets it; nil (the default): each app runs as its own `slipway-<app>`.
    public var appsUser: String?
    // MARK: issue 16 (accounts, local repo roots): kept apart from the other sections.
    /// `accounts:`: which accounts apps may run as, and with which privileges.
    public var accounts = AccountPolicy()
    /// `git.local_roots`: where local source repos may lie.
    public var localRepoRoots = LocalRepoRoots.default
    /// The only directory `backend.env_file` may name a file in: a manifest pusher must not be
    /// able to make the agent read any file it likes into an app's environment.
    public var envDir: String = AgentConfig.defaultEnvDir

    /// `nginx:`: where Slipway writes each served app's server block, and how it checks and
    /// reloads nginx; nil: no nginx config is written (a manifest's `frontend.serve` is ignored).
    public var nginx: Nginx?

    public struct Nginx: Sendable, Equatable {
        /// A directory nginx includes inside `http {}` (Debian: /etc/nginx/sites-enabled).
        public var sitesDir: String
        /// Checks the whole configuration; a non-zero exit means it is refused.
        public var test: String
        public var reload: String
        /// nginx's `pid` file: a reload nginx took starts new workers under that master, one it
        /// could not take does not. nil: unknown, and a reload is judged by connecting.
        public var pidFile: String?

        /// Debian's, for the nginx its own service runs.
        public static let debianPIDFile = "/run/nginx.pid"
        /// The reload commands that signal Debian's nginx service, whose master `debianPIDFile`
        /// names. Any other (`nginx -c /srv/web/nginx.conf -s reload`) may signal another nginx,
        /// and the pid file is then taken only from `pid_file`: watching the wrong master would
        /// judge every reload refused.
        public static let serviceReloads: Set<String> = ["nginx -s reload", "/usr/sbin/nginx -s reload", "systemctl reload nginx",
                                                         "systemctl reload nginx.service", "service nginx reload"]

        public init(sitesDir: String = "/etc/nginx/sites-enabled", test: String = "nginx -t -q", reload: String = "nginx -s reload",
                    pidFile: String? = nil) {
            self.sitesDir = sitesDir
            self.test = test
            self.reload = reload
            self.pidFile = pidFile ?? Self.defaultPIDFile(reload: reload)
        }

        /// `debianPIDFile` for one of `serviceReloads`, else none.
        public static func defaultPIDFile(reload: String) -> String? {
            serviceReloads.contains(reload) ? debianPIDFile : nil
        }
    }

    public static let defaultEnvDir = "/etc/slipway/env"

    /// Run after every deploy ends, success or failure (`on_deploy:`).
    public var onDeploy: [DeployHook] = []

    public struct DeployHook: Sendable, Equatable {
        /// A shell command, given the deploy's facts as SLIPWAY_* variables.
        public var command: String?
        /// An http:// URL that gets the same facts as a signed JSON POST.
        public var webhook: String?
        /// The webhook's signing secret; nil: notify.secret_file's.
        public var secretFile: String?
        public var timeout: Duration
        public var retries: Int
    }

    public static let defaultListen = ListenAddress(host: "127.0.0.1", port: 7070)

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

    /// `git:`: credentials and host keys for remotes (GitConfig.swift).
    public var git = GitConfig()

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
        self.listen = AgentConfig.defaultListen
        self.socketPath = stateDir + "/agent.sock"
        self.notifySecretFile = nil
    }

    /// Parses and validates agent.yaml. `hostname` is the machine's name, the default for `host`.
    public static func decode(_ text: String, file: String, hostname: String) -> Result<AgentConfig, Diagnostics> {
        FieldReader.decodeDocument(text, file: file) { root, reader in decode(root, reader: reader, hostname: hostname) }
    }

    static func decode(_ root: YAMLNode, reader: FieldReader, hostname: String) -> AgentConfig? {
        guard let top = reader.fields(of: root, named: "the agent config",
                                      known: ["host", "manifests", "apps_root", "state_dir", "poll_interval",
                                                              "listen", "socket", "notify", "on_deploy", "apps_user", "env_dir", "nginx",
                                              "api", "build_log_max", "removal_grace",
                                              "accounts", "git"]) else { return nil }
        let host = top["host"].flatMap { reader.nonEmptyString($0, "host") } ?? hostname

        let manifests = top.required("manifests", example: "{repo: /srv/git/manifests.git}").flatMap { node -> ManifestsSource? in
            guard let fields = reader.fields(of: node, named: "manifests", known: ["repo", "branch", "path", "verify"]) else { return nil }
            let repo = fields.required("repo", example: "/srv/git/manifests.git").flatMap { reader.repoLocation($0, "manifests.repo") }
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

        var listen: ListenAddress? = defaultListen
        if let node = top["listen"], let text = reader.nonEmptyString(node, "listen") {
            if text == "off" {
                listen = nil
            } else if let address = ListenAddress(text) {
                listen = address
            } else {
                reader.report("listen must be host:port or 'off', not '\(text)'", at: node.mark, hint: "for example 127.0.0.1:7070")
            }
        }
        let socketPath = absolute("socket", default: stateDir + "/agent.sock")
        let envDir = absolute("env_dir", default: defaultEnvDir)
        var appsUser: String?
        if let node = top["apps_user"], let name = reader.nonEmptyString(node, "apps_user") {
            if name == "root" || !AccountName.isValid(name) {
                reader.report("apps_user must be an unprivileged account name, not '\(name)'", at: node.mark,
                              hint: "for example 'slipway' (the .deb creates it) or 'www-data'")
            } else {
                appsUser = name
            }
        }
        var secretFile: String?
        if let node = top["notify"], let fields = reader.fields(of: node, named: "notify", known: ["secret_file"]) {
            secretFile = fields.required("secret_file", example: "/etc/slipway/notify.secret").flatMap { node -> String? in
                guard let text = reader.nonEmptyString(node, "notify.secret_file") else { return nil }
                guard text.hasPrefix("/") else {
                    reader.report("notify.secret_file must be an absolute path, not '\(text)'", at: node.mark)
                    return nil
                }
                return text
            }
        }

        var nginx: Nginx?
        if let node = top["nginx"], let fields = reader.fields(of: node, named: "nginx", known: ["sites_dir", "test", "reload", "pid_file"]) {
            var value = Nginx()
            if let dirNode = fields["sites_dir"], let dir = reader.nonEmptyString(dirNode, "nginx.sites_dir") {
                if dir.hasPrefix("/"), !dir.split(separator: "/").contains("..") {
                    value.sitesDir = dir.count > 1 && dir.hasSuffix("/") ? String(dir.dropLast()) : dir
                } else {
                    reader.report("nginx.sites_dir must be an absolute path without '..', not '\(dir)'", at: dirNode.mark,
                                  hint: "for example /etc/nginx/sites-enabled")
                }
            }
            if let fileNode = fields["pid_file"], let file = reader.nonEmptyString(fileNode, "nginx.pid_file") {
                if file.hasPrefix("/"), !file.hasSuffix("/"), !file.split(separator: "/").contains("..") {
                    value.pidFile = file
                } else {
                    reader.report("nginx.pid_file must be an absolute file path without '..', not '\(file)'", at: fileNode.mark,
                                  hint: "the path of nginx.conf's 'pid' directive, for example /run/nginx.pid")
                }
            }
            if let text = fields["test"].flatMap({ reader.nonEmptyString($0, "nginx.test") }) { value.test = text }
            if let text = fields["reload"].flatMap({ reader.nonEmptyString($0, "nginx.reload") }) { value.reload = text }
            if fields["pid_file"] == nil { value.pidFile = Nginx.defaultPIDFile(reload: value.reload) }
            nginx = value
        }

        var hooks: [DeployHook] = []
        if let node = top["on_deploy"] {
            if case .sequence(let items) = node.content {
                for item in items {
                    if let hook = decodeHook(item, reader: reader) { hooks.append(hook) }
                }
            } else {
                reader.report("on_deploy must be a list of hooks, not \(node.kindDescription)", at: node.mark,
                              hint: "write '- command: …' or '- webhook: http://…' entries")
            }
        }

        let git = top["git"].map { GitConfig.decode($0, reader: reader) } ?? GitConfig()

        guard let manifests else { return nil }
        var config = AgentConfig(host: host, manifests: manifests, appsRoot: appsRoot, stateDir: stateDir, pollInterval: pollInterval)
        config.listen = listen
        config.socketPath = socketPath
        config.notifySecretFile = secretFile
        config.onDeploy = hooks
        config.appsUser = appsUser
        config.nginx = nginx
        config.envDir = envDir
        config.git = git
        if let node = top["api"] { config.api = decodeAPI(node, reader: reader) }
        if let node = top["removal_grace"], let value = reader.duration(node, "removal_grace", atLeast: .zero) {
            config.removalGrace = value
        }
        if let node = top["build_log_max"], let text = reader.nonEmptyString(node, "build_log_max") {
            if let bytes = ByteSize.parse(text), bytes >= 64 << 10, bytes <= 1 << 40 {
                config.buildLogMax = Int(bytes)
            } else {
                reader.report("build_log_max must be a size of at least 64K, not '\(text)'", at: node.mark, hint: "for example 32M (the default) or 256M")
            }
        }
        // issue 16: accounts and local repo roots.
        if let node = top["accounts"] { config.accounts = AccountPolicy.decode(node, reader: reader) }
        if let node = top["git"] { config.localRepoRoots = decodeLocalRoots(node, reader: reader) }
        if hooks.contains(where: { $0.webhook != nil && $0.secretFile == nil }) && secretFile == nil, let node = top["on_deploy"] {
            reader.report("an on_deploy webhook needs a secret to sign with", at: node.mark,
                          hint: "give it 'secret_file', or set notify.secret_file")
        }
        return config
    }

    static func decodeHook(_ node: YAMLNode, reader: FieldReader) -> DeployHook? {
        guard let fields = reader.fields(of: node, named: "an on_deploy hook", known: ["command", "webhook", "secret_file", "timeout", "retries"]) else { return nil }
        let command = fields["command"].flatMap { reader.nonEmptyString($0, "on_deploy.command") }
        var webhook: String?
        if let urlNode = fields["webhook"], let url = reader.nonEmptyString(urlNode, "on_deploy.webhook") {
            if url.hasPrefix("http://") {
                webhook = url
            } else {
                reader.report("on_deploy.webhook must be an http:// URL, not '\(url)'", at: urlNode.mark,
                              hint: "https is not supported yet: point it at a local relay, or use a command hook with curl")
            }
        }
        let secretFile = fields["secret_file"].flatMap { reader.nonEmptyString($0, "on_deploy.secret_file") }
        let timeout = fields["timeout"].flatMap { reader.duration($0, "on_deploy.timeout") }
        let retries = fields["retries"].flatMap { reader.integer($0, "on_deploy.retries", range: 0...10) } ?? 3
        guard command != nil || webhook != nil else {
            if fields["webhook"] == nil {
                reader.report("an on_deploy hook needs a 'command' or a 'webhook'", at: node.mark)
            }
            return nil
        }
        return DeployHook(command: command, webhook: webhook, secretFile: secretFile,
                          timeout: timeout ?? (command != nil ? .seconds(30) : .seconds(5)), retries: retries)
    }

    // MARK: `git.local_roots`; the other `git:` keys are `GitConfig`'s, which reports unknown ones.
    static func decodeLocalRoots(_ node: YAMLNode, reader: FieldReader) -> LocalRepoRoots {
        guard case .mapping(let pairs) = node.content,
              let list = pairs.first(where: { $0.key == "local_roots" }).flatMap({ reader.stringList($0.value, "git.local_roots") }) else { return .default }
        var roots: [String] = []
        for (path, mark) in list {
            if path.hasPrefix("/"), !path.split(separator: "/").contains("..") {
                roots.append(path)
            } else {
                reader.report("git.local_roots: '\(path)' must be an absolute path without '..'", at: mark, hint: "for example /srv/git")
            }
        }
        return LocalRepoRoots(roots: roots)
    }
}
