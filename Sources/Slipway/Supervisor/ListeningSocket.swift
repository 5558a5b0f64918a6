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
    /// For unix sockets: the socket's name in the directory it was put in (an fd), and its inode.
    let file: SocketFile?

    struct SocketFile: Sendable {
        var directory: Int32
        var name: EntryName
        var inode: ino_t
    }

    static let backlog: Int32 = 4096

    private init(fd: Int32, address: WorkerListen, path: String?, file: SocketFile? = nil) {
        self.fd = fd
        self.address = address
        self.path = path
        self.file = file
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
            return try bindUnix(relative, appDirectory: appDirectory, address: address, group: group)
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
        // Issue 16: never join (SO_REUSEPORT) a socket another program listens on.
        try ForeignListeners.check(first.pointee.ai_addr, address)
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

    /// Binds the socket without ever following a link the app planted: the directories are
    /// made and opened through directory fds (no symlink followed below the app's directory);
    /// the socket is bound in a private root-only directory beside its final name (reached as
    /// /proc/self/fd/N, not by path), given its group and mode there, where no app can swap it,
    /// then renamed into place (renameat replaces a stale socket's name, never what a link
    /// points to). Something else at the path (not a socket) is refused.
    private static func bindUnix(_ relative: RelativePath, appDirectory: String, address: WorkerListen, group: gid_t?) throws -> ListeningSocket {
        let path = appDirectory + "/" + relative.value
        var components = relative.components
        let name = EntryName(components.removeLast())
        try SafeTree.makeDirectories(components, under: appDirectory, owner: nil)
        let parent = try SafeTree.locate(relative.value, under: appDirectory).parent
        if let existing = parent.status(of: name), existing.st_mode & S_IFMT != S_IFSOCK {
            throw SystemError("binding (something that is not a socket is in the way)", path: path, code: EEXIST)
        }
        let scratch = EntryName(".slipway-bind-\(getpid())-\(String(UInt64.random(in: 0...UInt64.max), radix: 36))")
        let code = parent.makeDirectory(scratch, mode: 0o700)
        guard code == 0, let privateDir = try parent.openDirectory(scratch) else { throw SystemError("binding", path: path, code: code == 0 ? ENOTDIR : code) }
        defer { _ = parent.unlink(scratch, directory: true) }
        let socketName = EntryName("s")
        let fd = try UnixSocket.bound(at: "/proc/self/fd/\(privateDir.fd)/s", type: SOCK_STREAM, what: "binding \(path)")
        func fail(_ what: String) -> Error {
            let code = errno
            Glibc.close(fd)
            _ = privateDir.unlink(socketName)
            return SystemError(what, path: path, code: code)
        }
        guard listen(fd, backlog) == 0 else { throw fail("binding") }
        if let group, socketName.withCString({ fchownat(privateDir.fd, $0, getuid(), group, AT_SYMLINK_NOFOLLOW) }) != 0 {
            throw fail("setting the group of")
        }
        guard socketName.withCString({ fchmodat(privateDir.fd, $0, 0o660, 0) }) == 0 else { throw fail("setting the mode of") }
        var info = stat()
        guard socketName.withCString({ fstatat(privateDir.fd, $0, &info, AT_SYMLINK_NOFOLLOW) }) == 0 else { throw fail("binding") }
        let moved = socketName.withCString { from in name.withCString { renameat(privateDir.fd, from, parent.fd, $0) } }
        guard moved == 0 else { throw fail("moving the socket into place at") }
        let kept = fcntl(parent.fd, F_DUPFD_CLOEXEC, 3)
        return ListeningSocket(fd: fd, address: address, path: path, file: kept < 0 ? nil : .init(directory: kept, name: name, inode: info.st_ino))
    }

    func close() {
        if path == nil { TCPListeners.shared.unregister(fd) }
        Glibc.close(fd)
        // Only the very socket this made, by its name in the directory it was put in.
        if let file {
            var info = stat()
            if file.name.withCString({ fstatat(file.directory, $0, &info, AT_SYMLINK_NOFOLLOW) }) == 0,
               info.st_mode & S_IFMT == S_IFSOCK, info.st_ino == file.inode {
                _ = file.name.withCString { unlinkat(file.directory, $0, 0) }
            }
            Glibc.close(file.directory)
        }
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

    /// The inodes of the sockets registered here.
    func inodes() -> Set<UInt64> {
        fds.withLock { table in
            Set(table.values.compactMap(\.first).compactMap { fd -> UInt64? in
                var info = stat()
                return fstat(fd, &info) == 0 ? UInt64(info.st_ino) : nil
            })
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
