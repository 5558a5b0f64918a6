/// One app's desired state, as declared in its manifest and validated: holding a `Manifest`
/// means every name, path and value in it was checked.
public struct Manifest: Sendable, Equatable {
    public var app: AppName
    public var source: Source
    /// The hosts that run this app; nil means every host.
    public var hosts: [String]?
    public var keep: Int
    public var shared: [RelativePath]
    /// Sorted by name, so the same manifest always renders and fingerprints the same way.
    public var env: [EnvVar]
    public var buildTimeout: Duration
    public var frontend: Frontend?
    public var backend: Backend?
    /// Schema changes as deploy stages (expand before the switch, contract after verify).
    public var migrate: Migrate?

    public static let defaultKeep = 5
    public static let defaultBuildTimeout = Duration.seconds(15 * 60)

    public struct Source: Sendable, Equatable {
        public var repo: String
        public var ref: GitRef
    }

    public struct Frontend: Sendable, Equatable {
        public var build: String?
        public var output: RelativePath
        /// How nginx serves it; nil: Slipway writes no nginx config for the app.
        public var serve: Serve?

        public init(build: String? = nil, output: RelativePath, serve: Serve? = nil) {
            self.build = build
            self.output = output
            self.serve = serve
        }
    }

    public struct Backend: Sendable, Equatable {
        public var build: String?
        public var dir: RelativePath
        /// Who builds and runs the app when the agent runs as root; nil: the agent's `apps_user`.
        public var user: String?
        /// Host-local variables (secrets) merged over `env` for the workers; not seen by builds.
        public var envFile: String?
        /// Nil: the backend is published but no workers run it.
        public var workers: Workers?

        public init(build: String? = nil, dir: RelativePath = .root, user: String? = nil, envFile: String? = nil, workers: Workers? = nil) {
            self.build = build
            self.dir = dir
            self.user = user
            self.envFile = envFile
            self.workers = workers
        }
    }

    public struct EnvVar: Sendable, Equatable, Codable {
        public var name: String
        public var value: String
    }

    public init(app: AppName, source: Source, hosts: [String]? = nil, keep: Int = Manifest.defaultKeep,
                shared: [RelativePath] = [], env: [EnvVar] = [], buildTimeout: Duration = Manifest.defaultBuildTimeout,
                frontend: Frontend? = nil, backend: Backend? = nil, migrate: Migrate? = nil) {
        self.app = app
        self.source = source
        self.hosts = hosts
        self.keep = keep
        self.shared = shared
        self.env = env
        self.buildTimeout = buildTimeout
        self.frontend = frontend
        self.backend = backend
        self.migrate = migrate
    }

    /// Whether `host` should run this app.
    public func runs(on host: String) -> Bool {
        hosts?.contains(host) ?? true
    }
}

/// An app's name: `[a-z0-9][a-z0-9-]{0,62}`, safe as a directory name and in a URL.
public struct AppName: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public let value: String

    public init?(_ text: String) {
        guard Self.isValid(text) else { return nil }
        value = text
    }

    public static func isValid(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard (1...63).contains(bytes.count) else { return false }
        func lowerOrDigit(_ b: UInt8) -> Bool { (0x61...0x7A).contains(b) || (0x30...0x39).contains(b) }
        return lowerOrDigit(bytes[0]) && bytes.dropFirst().allSatisfy { lowerOrDigit($0) || $0 == 0x2D }
    }

    public var description: String { value }
    public static func < (lhs: AppName, rhs: AppName) -> Bool { lhs.value < rhs.value }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let name = AppName(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "invalid app name '\(text)'"))
        }
        self = name
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }
}

/// The declared version of an app's source: a full commit id, or a tag or branch name to resolve.
public enum GitRef: Sendable, Hashable, CustomStringConvertible {
    case commit(String)
    case name(String)

    public init?(_ text: String) {
        if text.count == 40, text.allSatisfy(\.isHexDigit) {
            self = .commit(text.lowercased())
        } else if Self.isValidName(text) {
            self = .name(text)
        } else {
            return nil
        }
    }

    /// git's check-ref-format rules, the parts that matter for a tag or branch name.
    static func isValidName(_ text: String) -> Bool {
        guard !text.isEmpty, text.utf8.count <= 255, !text.hasPrefix("-"), !text.hasPrefix("/"), !text.hasSuffix("/"),
              !text.hasSuffix("."), !text.hasSuffix(".lock"), !text.contains(".."), !text.contains("//"), !text.contains("@{"),
              text != "@" else { return false }
        let forbidden: Set<Character> = [" ", "~", "^", ":", "?", "*", "[", "\\"]
        return !text.contains(where: { forbidden.contains($0) || $0.asciiValue.map { $0 < 0x20 || $0 == 0x7F } == true })
    }

    public var description: String {
        switch self {
        case .commit(let sha): return sha
        case .name(let name): return name
        }
    }
}
