import Foundation

/// One worker's `NOTIFY_SOCKET` (the systemd readiness protocol): a datagram socket only that
/// worker is told about, so whatever writes `READY=1` to it speaks for that worker, even when
/// the message comes from a helper process such as `systemd-notify --ready`.
final class NotifySocket: Sendable {
    let fd: Int32
    let path: String

    init(path: String, owner: AppAccount?) throws {
        unlink(path)
        let fd = try UnixSocket.bound(at: path, type: SOCK_DGRAM, what: "binding a notify socket")
        if let owner { chown(path, owner.uid, owner.gid) }
        chmod(path, 0o600)
        self.fd = fd
        self.path = path
    }

    /// The socket a previous image of this agent bound (a re-exec, issue 19).
    init(adopting fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    /// Reads every datagram waiting; returns their `KEY=VALUE` lines.
    func receive() -> [(key: String, value: String)] {
        var result: [(String, String)] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { break }
            let text = String(decoding: buffer[..<count], as: UTF8.self)
            for line in text.split(separator: "\n") {
                guard let equals = line.firstIndex(of: "=") else { continue }
                result.append((String(line[..<equals]), String(line[line.index(after: equals)...])))
            }
        }
        return result
    }

    func close() {
        Glibc.close(fd)
        unlink(path)
    }
}
