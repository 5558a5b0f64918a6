import Foundation
import SlipwayCore

/// The output of one release's build steps (and its migrate steps), kept under
/// `state_dir/logs/<app>/<release>.build.log`.
public struct BuildLog {
    let path: String
    /// Where writers write: the file itself, or the pipe of a capped log's pump.
    let fd: Int32
    private let pump: CappedLogPump?

    /// `state_dir/logs/<app>`: the app's build logs, beside its worker log.
    public static func directory(stateDir: String, app: AppName) -> String { "\(stateDir)/logs/\(app)" }

    public static func path(in directory: String, release: ReleaseID) -> String { "\(directory)/\(release).build.log" }

    /// The releases, and the failed attempts that never became one, that have a log in `directory`.
    public static func releases(in directory: String) -> [ReleaseID] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .compactMap { $0.hasSuffix(".build.log") ? ReleaseID(String($0.dropLast(".build.log".count))) : nil }
    }

    /// Opens (appending) the log at `path`. With `maxBytes` (a release's build log:
    /// agent.yaml `build_log_max`), output goes through a `CappedLogPump` that keeps the file
    /// near that size, however much the commands write.
    static func create(at path: String, maxBytes: Int? = nil) throws -> BuildLog {
        try FileOps.makeDirectories(String(path[..<path.lastIndex(of: "/")!]))
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0o640)
        guard fd >= 0 else { throw SystemError("opening build log", path: path) }
        guard let maxBytes else { return BuildLog(path: path, fd: fd, pump: nil) }
        do {
            let pump = try CappedLogPump(fileFD: fd, path: path, maxBytes: maxBytes)
            return BuildLog(path: path, fd: pump.writeFD, pump: pump)
        } catch {
            _ = Foundation.close(fd)
            throw error
        }
    }

    func note(_ line: String) {
        try? FileOps.writeAll(fd, Array((line + "\n").utf8), path: path)
    }

    func close() {
        if let pump { pump.finish() } else { _ = Foundation.close(fd) }
    }

    /// The file's size now: a mark to read what one command wrote after it.
    var size: UInt64 {
        pump?.settle()
        var info = stat()
        return fstat(pump?.fileFD ?? fd, &info) == 0 ? UInt64(info.st_size) : 0
    }

    /// What was written since `offset` (at most the last 16 KiB of it).
    func text(since offset: UInt64) -> String {
        pump?.settle()
        guard let bytes = FileOps.readFile(path) else { return "" }
        let start = min(Int(offset), bytes.count)
        return String(decoding: bytes[start...].suffix(16 * 1024), as: UTF8.self)
    }

    /// Deletes old logs: those of kept releases stay, and the newest `others` of the rest
    /// (failed attempts, pruned releases), so a failure stays readable for a while.
    static func prune(in directory: String, keeping kept: Set<ReleaseID>, others: Int = 10) {
        let logs = releases(in: directory)
            .filter { !kept.contains($0) }
            .sorted(by: >)
        for id in logs.dropFirst(others) {
            unlink(path(in: directory, release: id))
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
