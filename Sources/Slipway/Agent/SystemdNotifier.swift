import Foundation

/// The agent's side of systemd's `Type=notify` protocol: `READY=1` once the first pass has
/// finished (converged or failed cleanly), `STATUS=` after every pass, `STOPPING=1` when a
/// graceful shutdown starts. A no-op outside systemd (no `NOTIFY_SOCKET`).
public final class SystemdNotifier: Sendable {
    private let path: String?

    /// Takes `NOTIFY_SOCKET` out of the process environment, so nothing the agent starts
    /// inherits it (workers get their own; builds and hooks get none).
    public init() {
        path = ProcessInfo.processInfo.environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
        unsetenv("NOTIFY_SOCKET")
    }

    /// `NOTIFY_SOCKET` as it was: a re-exec (issue 19) gives it to the next image.
    var socketPath: String? { path }

    /// Sends `KEY=value` lines in one datagram; failures are ignored (systemd may be gone).
    public func send(_ fields: [(String, String)]) {
        guard let path else { return }
        let message = Array(fields.map { "\($0.0)=\($0.1.replacingOccurrences(of: "\n", with: " "))" }.joined(separator: "\n").utf8)
        guard case (var address, let length)? = UnixSocket.address(path) else { return }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        _ = message.withUnsafeBytes { body in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, body.baseAddress, body.count, Int32(MSG_NOSIGNAL), $0, length) }
            }
        }
    }
}
