import Foundation
import SlipwayCore

/// The output of one release's build steps, kept under `state_dir/logs/<app>/`.
struct BuildLog {
    let path: String
    let fd: Int32

    static func create(at path: String) throws -> BuildLog {
        try FileOps.makeDirectories(String(path[..<path.lastIndex(of: "/")!]))
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0o640)
        guard fd >= 0 else { throw SystemError("opening build log", path: path) }
        return BuildLog(path: path, fd: fd)
    }

    func note(_ line: String) {
        try? FileOps.writeAll(fd, Array((line + "\n").utf8), path: path)
    }

    func close() {
        _ = Foundation.close(fd)
    }

    /// The file's size now: a mark to read what one command wrote after it.
    var size: UInt64 {
        var info = stat()
        return fstat(fd, &info) == 0 ? UInt64(info.st_size) : 0
    }

    /// What was written since `offset` (at most the last 16 KiB of it).
    func text(since offset: UInt64) -> String {
        guard let bytes = FileOps.readFile(path) else { return "" }
        let start = min(Int(offset), bytes.count)
        return String(decoding: bytes[start...].suffix(16 * 1024), as: UTF8.self)
    }

    /// Deletes old logs: those of kept releases stay, and the newest `others` of the rest
    /// (failed attempts, pruned releases), so a failure stays readable for a while.
    static func prune(in directory: String, keeping kept: Set<ReleaseID>, others: Int = 10) {
        let logs = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .compactMap { name -> ReleaseID? in name.hasSuffix(".build.log") ? ReleaseID(String(name.dropLast(".build.log".count))) : nil }
            .filter { !kept.contains($0) }
            .sorted(by: >)
        for id in logs.dropFirst(others) {
            unlink("\(directory)/\(id).build.log")
        }
    }

    /// The last `count` lines, for error messages.
    static func tail(of path: String, lines count: Int = 15) -> String {
        guard let bytes = FileOps.readFile(path) else { return "" }
        let window = bytes.suffix(16 * 1024)
        let lines = String(decoding: window, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        return lines.suffix(count + 1).joined(separator: "\n").trimmingCharacters(in: .newlines)
    }
}
