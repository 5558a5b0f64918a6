/// The `migrate` section: schema changes shipped as expand/contract steps of every deploy.
/// Expand runs before the switch (the old code keeps working on the expanded schema), contract
/// after every worker runs the new release and passed its health checks.
public struct Migrate: Sendable, Equatable {
    /// Run in the new release's backend directory before the switch.
    public var expand: String?
    /// Run once the new release serves and is healthy; a failure leaves it live.
    public var contract: String?
    /// On hosts left out of `hosts`: exits 0 once the schema this release needs exists. The
    /// switch waits for it, so no host runs new code before its schema.
    public var check: String?
    /// Bounds each step (and a waiting host's wait for `check`).
    public var timeout: Duration
    /// The hosts that run expand and contract; nil means every host (the commands must then be
    /// idempotent and take their own database lock).
    public var hosts: [String]?

    public static let defaultTimeout = Duration.seconds(5 * 60)

    public init(expand: String? = nil, contract: String? = nil, check: String? = nil,
                timeout: Duration = Migrate.defaultTimeout, hosts: [String]? = nil) {
        self.expand = expand
        self.contract = contract
        self.check = check
        self.timeout = timeout
        self.hosts = hosts
    }

    /// What `host` does about this app's migrations.
    public func role(on host: String) -> MigrationRole {
        if hosts?.contains(host) ?? true { return .runs }
        return check == nil ? .none : .waits
    }
}

/// One host's part in an app's migrations.
public enum MigrationRole: Sendable, Equatable {
    /// No migrations here (none declared, or this host neither runs nor waits for them).
    case none
    /// This host runs `expand` before its switch and `contract` after its verify.
    case runs
    /// Another host migrates: this one runs `check` until it passes before its switch.
    case waits

    /// Whether a deploy here has a step between build and switch that must finish first.
    public func gatesSwitch(_ migrate: Migrate?) -> Bool {
        switch self {
        case .none: return false
        case .runs: return migrate?.expand != nil
        case .waits: return migrate?.check != nil
        }
    }

    /// Whether this host runs the contract step.
    public func contracts(_ migrate: Migrate?) -> Bool {
        self == .runs && migrate?.contract != nil
    }
}
