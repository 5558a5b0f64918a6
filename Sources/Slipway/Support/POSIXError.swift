import Foundation
import Synchronization

/// A failed system call, named with what it was doing and on which path.
public struct SystemError: Error, Sendable, CustomStringConvertible {
    public var operation: String
    public var path: String
    public var code: Int32

    public init(_ operation: String, path: String, code: Int32 = errno) {
        self.operation = operation
        self.path = path
        self.code = code
    }

    public var description: String { "\(operation) \(path): \(String(cString: strerror(code)))" }
}

/// Small file helpers on plain system calls: they never follow a symlink they were not asked to.
enum FileOps {
    private static let tempNumbers = Atomic<Int>(0)

    /// A temp name beside `path` that no other write uses at the same time: this process's pid
    /// and a number of its own. With the pid alone, two threads writing one file (`agent.json`
    /// at a re-exec's READY and after its takeover) opened the same temp file, and the shorter
    /// write left the longer one's tail after its own bytes.
    static func tempName(for path: String) -> String {
        path + ".tmp-\(getpid())-\(tempNumbers.add(1, ordering: .relaxed).newValue)"
    }

    static func lstatMode(_ path: String) -> mode_t? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return info.st_mode & S_IFMT
    }

    static func isDirectory(_ path: String) -> Bool { lstatMode(path) == S_IFDIR }

    static func isDirectory(following path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }
    static func exists(_ path: String) -> Bool { lstatMode(path) != nil }

    static func makeDirectory(_ path: String, mode: mode_t = 0o755) throws {
        if mkdir(path, mode) != 0 && errno != EEXIST { throw SystemError("creating directory", path: path) }
    }

    /// Creates `path` and its missing parents. An existing symlink on the way is followed only
    /// when root (or the agent's own user) owns it: the operator's choice of prefix
    /// (`/srv -> /data/srv`) works, a link an app's account planted never does.
    static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            var info = stat()
            if lstat(current, &info) == 0 {
                let kind = info.st_mode & S_IFMT
                if kind == S_IFLNK, info.st_uid == 0 || info.st_uid == geteuid(), isDirectory(following: current) { continue }
                if kind != S_IFDIR { throw SystemError("creating directory (a non-directory is in the way)", path: current, code: ENOTDIR) }
                continue
            }
            try makeDirectory(current, mode: mode)
        }
    }

    /// Points the symlink at `path` to `target` in one step: a link under a temp name beside it,
    /// then rename(2) over it, so a reader sees the old target or the new one, never neither.
    static func replaceSymlink(at path: String, pointingTo target: String) throws {
        let directory = String(path[..<path.lastIndex(of: "/")!])
        let temp = tempName(for: directory + "/." + String(path[path.index(after: path.lastIndex(of: "/")!)...]))
        unlink(temp)
        guard symlink(target, temp) == 0 else { throw SystemError("creating link", path: temp) }
        guard rename(temp, path) == 0 else {
            let code = errno
            unlink(temp)
            throw SystemError("switching link", path: path, code: code)
        }
        syncDirectory(directory)
    }

    /// Writes a file atomically: a temp file beside it, fsync, then rename(2) over the old one.
    /// `durable: false` skips the fsync, for a file rewritten every pass from what is in memory,
    /// or of use only while this boot lasts (an fsync on a busy disk can take longer than a
    /// re-exec has, issue 19): a crash may leave the previous version, or on some filesystems an
    /// empty file.
    static func writeAtomically(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644, durable: Bool = true) throws {
        let temp = tempName(for: path)
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw SystemError("writing", path: temp) }
        do {
            try writeAll(fd, bytes, path: temp)
            guard !durable || fsync(fd) == 0 else { throw SystemError("syncing", path: temp) }
            close(fd)
        } catch {
            close(fd)
            unlink(temp)
            throw error
        }
        guard rename(temp, path) == 0 else {
            let code = errno
            unlink(temp)
            throw SystemError("renaming into place", path: path, code: code)
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var offset = 0
        while offset < bytes.count {
            let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw SystemError("writing", path: path)
            }
            offset += written
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
        try bytes.withUnsafeBytes { try writeAll(fd, $0, path: path) }
    }

    /// Reads a whole file with read(2) (works for /proc files, which report size 0).
    static func readFile(_ path: String, limit: Int = 64 << 20) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while result.count < limit {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            result += chunk[..<count]
        }
        return result
    }

    static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }

    /// `path` with every symlink followed (realpath(3)); nil when it cannot be resolved.
    @Sendable static func resolvedPath(_ path: String) -> String? {
        guard let real = realpath(path, nil) else { return nil }
        defer { free(real) }
        return String(cString: real)
    }

    static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count >= 0 else { return nil }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
