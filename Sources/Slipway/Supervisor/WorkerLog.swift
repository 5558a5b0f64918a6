import Foundation
import SlipwayCore

/// An app's worker output: `state_dir/logs/<app>/workers.log`, one line per output line,
/// stamped with the time, the worker's slot and pid and the stream; the supervisor's own
/// notes (started, ready, stopping, exited) go in the same file, so one `slipway logs APP`
/// tells the whole story. Rotated by size: `workers.log.1` … `.keep`.
final class WorkerLog: @unchecked Sendable {
    let path: String
    let maxSize: Int
    let keep: Int
    private let lock = NSLock()
    private var fd: Int32 = -1
    private var size = 0

    static let defaultMaxSize = 10 << 20
    static let defaultKeep = 3
    /// Longer lines are cut, so one runaway write cannot fill the disk between rotations.
    static let maxLine = 16 << 10

    static func path(stateDir: String, app: AppName) -> String { "\(stateDir)/logs/\(app)/workers.log" }

    init(path: String, maxSize: Int = WorkerLog.defaultMaxSize, keep: Int = WorkerLog.defaultKeep) {
        self.path = path
        self.maxSize = maxSize
        self.keep = keep
    }

    /// A line from a worker's stdout (`out`) or stderr (`err`), or from Slipway (`slipway`).
    func write(_ line: some Collection<UInt8>, worker: String, stream: String) {
        var text = Array("\(UTCTime.now.iso8601) [\(worker)] \(stream): ".utf8)
        text += line.prefix(Self.maxLine)
        if line.count > Self.maxLine { text += Array(" [line cut at \(Self.maxLine) bytes]".utf8) }
        text.append(0x0A)
        lock.lock()
        defer { lock.unlock() }
        if fd < 0 || size + text.count > maxSize { reopen(rotate: fd >= 0 || size + text.count > maxSize) }
        guard fd >= 0 else { return }
        text.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 { if errno == EINTR { continue }; return }
                offset += written
            }
        }
        size += text.count
    }

    func note(_ message: String, worker: String = "slipway") {
        write(Array(message.utf8), worker: worker, stream: "slipway")
    }

    private func reopen(rotate: Bool) {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
        let directory = String(path[..<path.lastIndex(of: "/")!])
        try? FileOps.makeDirectories(directory)
        var info = stat()
        if rotate || (lstat(path, &info) == 0 && Int(info.st_size) >= maxSize) {
            for index in stride(from: keep - 1, through: 1, by: -1) {
                rename("\(path).\(index)", "\(path).\(index + 1)")
            }
            rename(path, "\(path).1")
        }
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0o640)
        size = fstat(fd, &info) == 0 ? Int(info.st_size) : 0
    }

    func close() {
        lock.lock()
        defer { lock.unlock() }
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }
}
