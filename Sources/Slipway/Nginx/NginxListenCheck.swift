import Foundation
import SlipwayCore

/// Did nginx take a reload? `nginx -s reload` (and `systemctl reload nginx`) only signal the
/// master and exit 0 whatever it then makes of the new configuration: a master that cannot bind
/// a new `listen` (another process holds the port) keeps its old configuration and says so in its
/// error log only. So after a reload the agent looks, in `/proc/net/tcp` and `/proc/net/tcp6`,
/// for a socket of nginx's master (root) listening on each changed app's
/// `frontend.serve.listen`, until there is one or the deadline passes. Not a connection: an
/// app's own listener on that port answers one, and a loopback connect can fail where nginx
/// binds fine (`[::]` with IPv6 off on `lo`, an address bound with `ip_nonlocal_bind`).
///
/// A listen nginx already served before the reload (another server block on port 80, say) is
/// found either way: this catches the address nginx does not hold, not every refusal.
struct NginxListenCheck: Sendable {
    /// A reload binds in milliseconds; the rest is margin for a saturated host. Only a reload
    /// that did not take waits this long.
    var deadline: Duration = .seconds(10)
    var interval: Duration = .milliseconds(25)
    /// nginx's master runs as root (Debian's nginx.service), or as the agent's own account
    /// where the agent is not root (it can only signal such an nginx); apps run as neither.
    var owners: Set<UInt32> = [0, geteuid()]

    /// The listens without a socket of nginx's master before the deadline.
    func unserved(_ listens: [AppName: ServeListen]) async -> [AppName: ServeListen] {
        let end = ContinuousClock.now + deadline
        var missing = listens
        while true {
            let sockets = Self.hostListeners().filter { owners.contains($0.uid) }
            missing = missing.filter { _, listen in
                let (host, port) = listen.bindAddress
                let address = Self.addressBytes(host)
                return !sockets.contains { $0.serves(address: address, port: port) }
            }
            guard !missing.isEmpty, ContinuousClock.now + interval < end, !Task.isCancelled else { return missing }
            try? await Task.sleep(for: interval)
        }
    }

    static func hostListeners() -> [HostListener] {
        ["/proc/net/tcp", "/proc/net/tcp6"].flatMap { path in
            FileOps.readFile(path).map { HostListener.parse(procNet: String(decoding: $0, as: UTF8.self)) } ?? []
        }
    }

    /// An IPv4 or IPv6 literal's bytes; nil for a host name.
    static func addressBytes(_ host: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}
