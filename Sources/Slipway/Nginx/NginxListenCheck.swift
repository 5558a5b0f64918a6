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
    var interval: Duration = .milliseconds(50)
    /// nginx's master runs as root (Debian's nginx.service), or as the agent's own account
    /// where the agent is not root (it can only signal such an nginx); apps run as neither.
    var owners: Set<UInt32> = [0, geteuid()]

    /// The listens without a socket of nginx's master before the deadline. When one is still
    /// missing then, all are judged again as they are at the end: while nginx retries a bind that
    /// fails (5 times, 500 ms apart) the sockets it did open are listening, and it closes them
    /// when it gives up on the reload.
    func unserved(_ listens: [AppName: ServeListen]) async -> [AppName: ServeListen] {
        let end = ContinuousClock.now + deadline
        var missing = listens
        while true {
            missing = Self.unheld(missing, owners: owners)
            if missing.isEmpty { return [:] }
            guard ContinuousClock.now + interval < end, !Task.isCancelled else { return Self.unheld(listens, owners: owners) }
            try? await Task.sleep(for: interval)
        }
    }

    private static func unheld(_ listens: [AppName: ServeListen], owners: Set<UInt32>) -> [AppName: ServeListen] {
        let sockets = hostListeners().filter { owners.contains($0.uid) }
        return listens.filter { _, listen in
            let (host, port) = listen.bindAddress
            let address = addressBytes(host)
            return !sockets.contains { $0.serves(address: address, port: port) }
        }
    }

    /// Whether nginx could bind `listen` now: a bind as nginx does it (`SO_REUSEADDR`, no
    /// listen), closed at once. nginx takes a reload whole or not at all, so after one it did
    /// not take, every new address is missing; this tells the one another process holds (or
    /// that is not this host's) from those that only waited on it. A host name: not known, no.
    static func canBind(_ listen: ServeListen) -> Bool {
        let (host, port) = listen.bindAddress
        guard let address = addressBytes(host) else { return false }
        let family = address.count == 4 ? AF_INET : AF_INET6
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        if family == AF_INET6 { setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &on, socklen_t(MemoryLayout<Int32>.size)) }
        func bound<Address>(_ socketAddress: inout Address) -> Bool {
            withUnsafePointer(to: &socketAddress) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<Address>.size)) == 0 }
            }
        }
        if family == AF_INET {
            var socketAddress = sockaddr_in()
            socketAddress.sin_family = sa_family_t(AF_INET)
            socketAddress.sin_port = in_port_t(UInt16(port)).bigEndian
            withUnsafeMutableBytes(of: &socketAddress.sin_addr) { $0.copyBytes(from: address) }
            return bound(&socketAddress)
        }
        var socketAddress = sockaddr_in6()
        socketAddress.sin6_family = sa_family_t(AF_INET6)
        socketAddress.sin6_port = in_port_t(UInt16(port)).bigEndian
        withUnsafeMutableBytes(of: &socketAddress.sin6_addr) { $0.copyBytes(from: address) }
        return bound(&socketAddress)
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
