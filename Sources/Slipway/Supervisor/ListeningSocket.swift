import Foundation
import SlipwayCore

/// The socket an app's workers serve on. The agent binds it once and keeps it for the app's
/// life; every worker gets it as fd 3, so old and new workers share one accept queue and a
/// reload never refuses a connection. Non-blocking, so a worker that loses an accept race
/// to another never hangs in accept() and misses its stop signal.
final class ListeningSocket: Sendable {
    let fd: Int32
    let address: WorkerListen
    /// For unix sockets: the file, removed when the socket closes.
    let path: String?

    static let backlog: Int32 = 4096

    private init(fd: Int32, address: WorkerListen, path: String?) {
        self.fd = fd
        self.address = address
        self.path = path
    }

    /// The app's socket a previous image of this agent bound (a re-exec, issue 19).
    static func adopt(_ record: HandoverRecord.Listener) -> ListeningSocket? {
        guard let address = record.address else { return nil }
        if record.path == nil { TCPListeners.shared.register(record.fd, for: address) }
        return ListeningSocket(fd: record.fd, address: address, path: record.path)
    }

    /// Binds `address`; a unix socket path is resolved inside `appDirectory`.
    /// `SO_REUSEPORT` lets a restarted agent bind while workers a crashed agent left behind
    /// still hold the old socket; those are then replaced.
    static func bind(_ address: WorkerListen, appDirectory: String, group: gid_t?) throws -> ListeningSocket {
        switch address {
        case .tcp(let host, let port):
            // Another app of this agent already listens there (a rename: the new app starts
            // before the old one stops): share that very socket. A second SO_REUSEPORT socket
            // would split the connections, and those queued on the old one would be reset when
            // it closes; a dup keeps one accept queue alive until the last app lets it go.
            if let shared = TCPListeners.shared.duplicate(address) {
                return ListeningSocket(fd: shared, address: address, path: nil)
            }
            let socket = try bindTCP(host: host, port: port, address: address)
            TCPListeners.shared.register(socket.fd, for: address)
            return socket
        case .unix(let relative):
            let path = appDirectory + "/" + relative.value
            return try bindUnix(path: path, address: address, group: group)
        }
    }

    private static func bindTCP(host: String, port: Int, address: WorkerListen) throws -> ListeningSocket {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            throw SystemError("resolving listen address", path: address.description, code: EADDRNOTAVAIL)
        }
        defer { freeaddrinfo(list) }
        let fd = socket(first.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw SystemError("creating socket for", path: address.description) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size))
        // Accepted sockets inherit it: servers that never set it on an inherited socket (uvicorn
        // --fd 3) would otherwise wait ~40 ms (Nagle + delayed ACK) on every keep-alive answer.
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        guard Glibc.bind(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0, listen(fd, backlog) == 0 else {
            let code = errno
            Glibc.close(fd)
            throw SystemError("binding", path: address.description, code: code)
        }
        return ListeningSocket(fd: fd, address: address, path: nil)
    }

    private static func bindUnix(path: String, address: WorkerListen, group: gid_t?) throws -> ListeningSocket {
        let directory = String(path[..<path.lastIndex(of: "/")!])
        try FileOps.makeDirectories(directory)
        // A socket file a crashed agent left behind; never anything else.
        if FileOps.lstatMode(path) == S_IFSOCK { unlink(path) }
        let fd = try UnixSocket.bound(at: path, type: SOCK_STREAM, what: "binding")
        guard listen(fd, backlog) == 0 else {
            let code = errno
            Glibc.close(fd)
            throw SystemError("binding", path: path, code: code)
        }
        if let group { chown(path, getuid(), group) }
        chmod(path, 0o660)
        return ListeningSocket(fd: fd, address: address, path: path)
    }

    func close() {
        if path == nil { TCPListeners.shared.unregister(fd) }
        Glibc.close(fd)
        if let path { unlink(path) }
    }

    /// The endpoint a health check connects to.
    var endpoint: AgentClient.Endpoint {
        switch address {
        case .tcp(let host, let port):
            let connectHost = host == "0.0.0.0" ? "127.0.0.1" : host == "::" ? "::1" : host
            return .tcp(host: connectHost, port: port)
        case .unix: return .unix(path: path ?? "")
        }
    }
}

/// The TCP sockets this agent listens on, by address, with every fd that refers to each: what
/// `ListeningSocket.bind` shares when a second app asks for an address already bound.
final class TCPListeners: Sendable {
    static let shared = TCPListeners()
    private let fds = Mutex<[String: Set<Int32>]>([:])

    func register(_ fd: Int32, for address: WorkerListen) {
        _ = fds.withLock { $0[address.description, default: []].insert(fd) }
    }

    /// A new fd for the socket already bound at `address`, or nil when there is none.
    func duplicate(_ address: WorkerListen) -> Int32? {
        fds.withLock { table in
            guard let existing = table[address.description]?.first else { return nil }
            let copy = fcntl(existing, F_DUPFD_CLOEXEC, 3)
            guard copy >= 0 else { return nil }
            table[address.description, default: []].insert(copy)
            return copy
        }
    }

    func unregister(_ fd: Int32) {
        fds.withLock { table in
            for key in table.keys where table[key]?.remove(fd) != nil {
                if table[key]?.isEmpty == true { table[key] = nil }
            }
        }
    }
}
