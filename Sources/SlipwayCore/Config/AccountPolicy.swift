import Crypto

/// agent.yaml `accounts:`: which accounts an app's build, migrate steps and workers may run as
/// when the agent runs as root, and what those accounts may do.
///
///     accounts:
///       allowed: [www-data]          # accounts a manifest's backend.user may name (none by default)
///       privileged_groups: [video]   # more groups that make an account unusable
///       allow_privileged_ports: false
///
/// Without `backend.user` (and without agent.yaml `apps_user`), each app runs as its own
/// system account `slipway-<app>`, which the agent creates.
public struct AccountPolicy: Sendable, Equatable {
    public var allowed: [String] = []
    public var privilegedGroups: [String] = []
    /// Whether `backend.listen` may name a port below 1024.
    public var allowPrivilegedPorts = false

    public init(allowed: [String] = [], privilegedGroups: [String] = [], allowPrivilegedPorts: Bool = false) {
        self.allowed = allowed
        self.privilegedGroups = privilegedGroups
        self.allowPrivilegedPorts = allowPrivilegedPorts
    }

    /// Membership in any of these gives root or root's data in all but name.
    public static let builtInPrivilegedGroups = ["root", "sudo", "docker", "shadow", "disk", "adm"]

    public var allPrivilegedGroups: Set<String> { Set(Self.builtInPrivilegedGroups + privilegedGroups) }

    /// `slipway-<app>`; names that would pass the 32 bytes an account name may have are cut
    /// and given a hash of the full name, so two apps never share an account.
    public static func accountName(for app: AppName) -> String {
        let full = "slipway-" + app.value
        guard full.utf8.count > 32 else { return full }
        let digest = Hex.encode(SHA256.hash(data: Array(app.value.utf8)))
        return "slipway-" + app.value.prefix(15) + "-" + digest.prefix(8)
    }

    static func decode(_ node: YAMLNode, reader: FieldReader) -> AccountPolicy {
        var policy = AccountPolicy()
        guard let fields = reader.fields(of: node, named: "accounts", known: ["allowed", "privileged_groups", "allow_privileged_ports"]) else {
            return policy
        }
        if let list = fields["allowed"].flatMap({ reader.stringList($0, "accounts.allowed") }) {
            for (name, mark) in list {
                if name == "root" || !AccountName.isValid(name) {
                    reader.report("accounts.allowed: '\(name)' is not an unprivileged account name", at: mark, hint: "for example www-data")
                } else {
                    policy.allowed.append(name)
                }
            }
        }
        if let list = fields["privileged_groups"].flatMap({ reader.stringList($0, "accounts.privileged_groups") }) {
            policy.privilegedGroups = list.map(\.0)
        }
        if let flag = fields["allow_privileged_ports"].flatMap({ reader.bool($0, "accounts.allow_privileged_ports") }) {
            policy.allowPrivilegedPorts = flag
        }
        return policy
    }
}
