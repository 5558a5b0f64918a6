import Foundation

/// The account an app's builds and workers run as when the agent runs as root. Dropping to it
/// is done by `setpriv` (util-linux, on every Debian system) exec'd in place, so the pid the
/// agent spawned stays the worker's pid and fd 3 stays open.
struct AppAccount: Sendable, Equatable {
    let name: String
    let uid: uid_t
    let gid: gid_t
    let home: String

    struct Missing: Error, CustomStringConvertible {
        var name: String
        var description: String {
            "the account '\(name)' does not exist on this host; create it (useradd --system \(name)) or name another in backend.user"
        }
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

    /// The account to use: nil when the agent is not root (everything runs as the agent's user).
    static func forApp(declared: String?, fallback: String) throws -> AppAccount? {
        guard geteuid() == 0 else { return nil }
        return try lookup(declared ?? fallback)
    }

    static let setpriv = "/usr/bin/setpriv"

    /// `argv` prefixed so it runs as this account, with no capabilities and the account's groups.
    func wrap(_ argv: [String]) -> [String] {
        [Self.setpriv, "--reuid=\(uid)", "--regid=\(gid)", "--init-groups", "--inh-caps=-all", "--"] + argv
    }
}
