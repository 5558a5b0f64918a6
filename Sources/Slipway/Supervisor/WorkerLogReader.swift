import Foundation
import SlipwayCore

/// Reads an app's worker log for `slipway logs`: the last lines (across the rotated files
/// when the current one is short), and what was added since a position (following a rotation).
public struct WorkerLogReader: Sendable {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    public static func path(stateDir: String, app: AppName) -> String { WorkerLog.path(stateDir: stateDir, app: app) }

    public var exists: Bool { FileOps.exists(path) }

    /// Where reading stopped: the file (by inode) and the offset in it.
    public struct Position: Sendable {
        var inode: UInt64
        var offset: UInt64
    }

    public func lastLines(_ count: Int) -> [String] {
        guard count > 0 else { return [] }
        var lines: [String] = []
        for file in [path] + (1...WorkerLog.defaultKeep).map({ "\(path).\($0)" }) {
            guard let bytes = FileOps.readFile(file, limit: 64 << 20) else { break }
            let fileLines = String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
            lines = fileLines + lines
            if lines.count >= count { break }
        }
        return Array(lines.suffix(count))
    }

    public func end() -> Position {
        var info = stat()
        guard stat(path, &info) == 0 else { return Position(inode: 0, offset: 0) }
        return Position(inode: UInt64(info.st_ino), offset: UInt64(info.st_size))
    }

    /// Complete lines written since `position`; a rotated-away file is finished first.
    public func read(from position: Position) -> (lines: [String], next: Position) {
        var info = stat()
        guard stat(path, &info) == 0 else { return ([], position) }
        var lines: [String] = []
        var start = position
        if UInt64(info.st_ino) != position.inode {
            // Rotated: the rest of the old file is workers.log.1 now.
            if position.inode != 0 { lines += readLines("\(path).1", from: position.offset).lines }
            start = Position(inode: UInt64(info.st_ino), offset: 0)
        }
        let (more, consumed) = readLines(path, from: start.offset)
        return (lines + more, Position(inode: start.inode, offset: start.offset + consumed))
    }

    private func readLines(_ file: String, from offset: UInt64) -> (lines: [String], consumed: UInt64) {
        guard let handle = FileHandle(forReadingAtPath: file) else { return ([], 0) }
        defer { try? handle.close() }
        try? handle.seek(toOffset: offset)
        let data = handle.readDataToEndOfFile()
        guard let last = data.lastIndex(of: 0x0A) else { return ([], 0) }
        let complete = data[data.startIndex...last]
        return (String(decoding: complete, as: UTF8.self).split(separator: "\n").map(String.init), UInt64(complete.count))
    }
}
