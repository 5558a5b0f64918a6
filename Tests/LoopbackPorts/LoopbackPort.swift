import Foundation
import Synchronization

/// A free loopback TCP port for a test's server, chosen below the kernel's ephemeral range.
///
/// Not `bind(0)`: that hands out a port from the ephemeral range, where every outgoing
/// connection's local port comes from too. A server that binds its port only later (nginx at the
/// first reload that includes a server block, the agent when it starts an app's workers) could
/// find it taken by a load generator's connection, and its bind fails with EADDRINUSE. CI saw
/// that as "nginx does not serve the app". Below the range only listeners compete: the port is
/// tried with a bind here, and this process never hands out one port twice.
public enum LoopbackPort {
    /// bench/'s fixed ports (accept_balance.py, fresh_worker.py) and those given to its scripts by hand.
    static let benchPorts = 20_421...20_560
    private static let handedOut = Mutex<Set<Int>>([])

    public static func free() throws -> Int {
        let candidates = candidateRange()
        for _ in 0..<1_000 {
            let port = Int.random(in: candidates)
            guard !benchPorts.contains(port) else { continue }
            let fresh = handedOut.withLock { $0.insert(port).inserted }
            if fresh && canBind(port) { return port }
        }
        throw PortError(description: "no free loopback port in \(candidates)")
    }

    /// 10000 up to the ephemeral range's start; above its end when that leaves too few.
    static func candidateRange() -> ClosedRange<Int> {
        let bounds = ((try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? "32768 60999")
            .split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
        let (low, high) = bounds.count == 2 ? (bounds[0], bounds[1]) : (32_768, 60_999)
        return low - 10_000 >= 4_000 ? 10_000...(low - 1) : (high + 1)...65_535
    }

    private static func canBind(_ port: Int) -> Bool {
        guard let fd = boundSocket(port) else { return false }
        close(fd)
        return true
    }

    /// A socket bound to 127.0.0.1:`port` that never listens, as another process's connection
    /// would hold it: a server's bind there fails with EADDRINUSE until the caller closes it.
    public static func hold(_ port: Int) throws -> Int32 {
        guard let fd = boundSocket(port) else { throw PortError(description: "cannot bind 127.0.0.1:\(port): errno \(errno)") }
        return fd
    }

    /// Without SO_REUSEADDR, so that nobody else can bind the port while it is open.
    private static func boundSocket(_ port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port)).bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard bound else { close(fd); return nil }
        return fd
    }

    public struct PortError: Error, CustomStringConvertible {
        public let description: String
    }
}
