import Foundation

/// Unix socket addresses: the one piece of sockaddr_un handling the workers' listening socket,
/// their notify sockets and the agent's own systemd notifications need.
enum UnixSocket {
    /// The address of `path`, or of an abstract socket for "@name" (a leading NUL, and a length
    /// that counts only the bytes used); nil when the path does not fit.
    static func address(_ path: String) -> (address: sockaddr_un, length: socklen_t)? {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        let abstract = bytes.first == UInt8(ascii: "@")
        if abstract { bytes[0] = 0 }
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: bytes)
            buffer[bytes.count] = 0
        }
        let length = abstract ? MemoryLayout<sa_family_t>.size + bytes.count : MemoryLayout<sockaddr_un>.size
        return (address, socklen_t(length))
    }

    /// A new non-blocking, close-on-exec socket of `type`, bound at `path`; the caller owns the fd.
    static func bound(at path: String, type: __socket_type, what: String) throws -> Int32 {
        guard case (var address, let length)? = address(path) else {
            throw SystemError("\(what) (path too long for a unix socket)", path: path, code: ENAMETOOLONG)
        }
        let fd = socket(AF_UNIX, Int32(type.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw SystemError(what, path: path) }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard result == 0 else {
            let code = errno
            close(fd)
            throw SystemError(what, path: path, code: code)
        }
        return fd
    }
}
