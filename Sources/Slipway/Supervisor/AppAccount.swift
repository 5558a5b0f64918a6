import Foundation
import SlipwayCore

/// The account an app's builds, migrate steps and workers run as when the agent runs as root.
/// Dropping to it is done by `setpriv` (util-linux, on every Debian system) exec'd in place, so
/// the pid the agent spawned stays the worker's pid and fd 3 stays open.
///
/// Which account (`forApp`): the manifest's `backend.user` if agent.yaml `accounts.allowed`
/// lists it; else agent.yaml `apps_user` if the operator set one (shared by those apps); else
/// the app's own `slipway-<app>`, created here on first use. Whatever the name, an account with
/// uid or gid 0, or in a privileged group (`AccountPolicy`), is refused.
struct AppAccount: Sendable, Equatable {
    let name: String
    let uid: uid_t
    let gid: gid_t
    let home: String
    /// The app's own account (no supplementary groups); false for an allowed or shared one,
    /// which keeps its (checked, unprivileged) groups.
    var isPerApp = false

    struct Missing: Error, CustomStringConvertible {
        var name: String
        var description: String {
            "the account '\(name)' does not exist on this host; create it (useradd --system \(name)) or name another in backend.user"
        }
    }

    struct Refused: Error, CustomStringConvertible {
        var description: String
    }

    static func lookup(_ name: String) throws -> AppAccount {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16384)
        getpwnam_r(name, &entry, &buffer, buffer.count, &result)
        guard let found = result else { throw Missing(name: name) }
        return AppAccount(name: name, uid: found.pointee.pw_uid, gid: found.pointee.pw_gid,
                          home: String(cString: found.pointee.pw_dir))
    }

    /// The account to use for `app`: nil when the agent is not root (everything runs as the
    /// agent's user). `manifestPath` locates a refused `backend.user`.
    static func forApp(_ app: AppName, declared: String?, config: AgentConfig, manifestPath: String? = nil) throws -> AppAccount? {
        guard geteuid() == 0 else { return nil }
        let policy = config.accounts
        let perApp = AccountPolicy.accountName(for: app)
        let account: AppAccount
        let origin: String
        if let declared {
            origin = "\(manifestPath.map { $0 + ": " } ?? "")backend.user '\(declared)'"
            guard policy.allowed.contains(declared) else {
                throw Refused(description: "\(origin) is not in agent.yaml accounts.allowed (empty by default); list it there, "
                              + "or drop backend.user so the app runs as its own account \(perApp)")
            }
            account = try lookup(declared)
        } else if let shared = config.appsUser {
            origin = "agent.yaml apps_user '\(shared)'"
            account = try lookup(shared)
        } else {
            origin = "the app's account '\(perApp)'"
            account = try ensurePerApp(perApp, app: app)
        }
        try account.vet(origin: origin, privilegedGroups: policy.allPrivilegedGroups)
        return account
    }

    /// Refuses root by uid or gid (a `toor` alias is root), and membership in a privileged group.
    func vet(origin: String, privilegedGroups: Set<String>) throws {
        guard uid != 0, gid != 0 else {
            throw Refused(description: "\(origin) has uid \(uid) and gid \(gid): that is root; Slipway never runs an app as root")
        }
        let privileged = groupNames().filter { privilegedGroups.contains($0) }.sorted()
        if let group = privileged.first {
            throw Refused(description: "\(origin) is in the privileged group '\(group)' (\(privileged.joined(separator: ", "))); "
                          + "Slipway refuses to run an app as it: take the account out (gpasswd -d \(name) \(group)) or use another")
        }
    }

    /// The names of the account's primary and supplementary groups.
    func groupNames() -> [String] {
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        while getgrouplist(name, gid, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count) + 64)
            count = Int32(groups.count)
        }
        return groups.prefix(Int(count)).map { gid in
            var entry = group()
            var result: UnsafeMutablePointer<group>?
            var buffer = [CChar](repeating: 0, count: 16384)
            getgrgid_r(gid, &entry, &buffer, buffer.count, &result)
            return result.map { String(cString: $0.pointee.gr_name) } ?? "\(gid)"
        }
    }

    /// The app's own system account: no login shell, no home, no supplementary groups.
    static func ensurePerApp(_ name: String, app: AppName) throws -> AppAccount {
        if var existing = try? lookup(name) {
            existing.isPerApp = true
            return existing
        }
        let argv = ["/usr/sbin/useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
                    "--user-group", "--comment", "Slipway app \(app)", name]
        let status = Self.run(argv)
        // 9: made meanwhile by another pass of this agent.
        guard status == 0 || status == 9 else {
            throw Refused(description: "creating the account '\(name)' for app \(app) failed (\(argv.joined(separator: " ")) exited with \(status)); "
                          + "create it by hand, or set agent.yaml apps_user")
        }
        var made = try lookup(name)
        made.isPerApp = true
        return made
    }

    private static func run(_ argv: [String]) -> Int32 {
        let devnull = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(devnull) }
        guard let child = try? ChildProcess.spawn(argv: argv, environment: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], directory: "/",
                                                  stdout: devnull, stderr: devnull) else { return -1 }
        var status: Int32 = 0
        while waitpid(child.pid, &status, 0) < 0 && errno == EINTR {}
        return status & 0x7f == 0 ? (status >> 8) & 0xff : -1
    }

    static let setpriv = "/usr/bin/setpriv"

    /// `argv` prefixed so it runs as this account with no capabilities at all (none inherited,
    /// an empty bounding set) and `no_new_privs`, so no setuid program gives any back; the app's
    /// own account gets no supplementary groups, an allowed or shared one its (checked) groups.
    func wrap(_ argv: [String]) -> [String] {
        [Self.setpriv, "--reuid=\(uid)", "--regid=\(gid)", isPerApp ? "--clear-groups" : "--init-groups",
         "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"] + argv
    }
}
