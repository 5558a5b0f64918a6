import Foundation
import SlipwayCore

/// A worker's own socket, fd 4 beside the app's shared fd 3: a TCP socket the agent binds on
/// 127.0.0.1 at an ephemeral port, listening before the worker starts, so nobody else can take
/// the port while the worker lives. Only the agent's health checks connect to it, so each
/// result names the one worker that answered; clients keep using the shared socket.
///
/// Loopback TCP rather than a unix socket: nothing is created in a directory the app could
/// reach, so root never follows a path the app controls.
final class WorkerSocket: Sendable {
    let fd: Int32
    let port: Int

    /// The name in LISTEN_FDNAMES after the app's own (`<app>:worker`).
    static let fdName = "worker"

    private init(fd: Int32, port: Int) {
        self.fd = fd
        self.port = port
    }

    /// The socket a previous image of this agent bound (a re-exec, issue 19).
    convenience init(adopting fd: Int32, port: Int) {
        self.init(fd: fd, port: port)
    }

    static func bind() throws -> WorkerSocket {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw SystemError("creating a worker's own socket on", path: "127.0.0.1") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Bool in
                Glibc.bind(fd, pointer, length) == 0 && listen(fd, 64) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else {
            let code = errno
            Glibc.close(fd)
            throw SystemError("binding a worker's own socket on", path: "127.0.0.1:0", code: code)
        }
        return WorkerSocket(fd: fd, port: Int(UInt16(bigEndian: address.sin_port)))
    }

    var endpoint: AgentClient.Endpoint { .tcp(host: "127.0.0.1", port: port) }
    var description: String { "127.0.0.1:\(port)" }

    func close() {
        Glibc.close(fd)
    }

    /// LISTEN_FDS and LISTEN_FDNAMES for a worker given `shared` (fd 3) and, when it is judged
    /// on its own, its own socket as fd 4.
    static func listenVariables(app: AppName, shared: Bool, own: Bool) -> [String: String] {
        guard shared else { return [:] }
        return own ? ["LISTEN_FDS": "2", "LISTEN_FDNAMES": "\(app.value):\(fdName)"]
                   : ["LISTEN_FDS": "1", "LISTEN_FDNAMES": app.value]
    }
}
