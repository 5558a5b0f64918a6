import Foundation

/// Read-only copies of file contents keyed by git blob id, per app, hardlinked into releases.
///
/// A file that did not change between two releases is the same inode in both, so a release
/// where one file changed costs one file of disk and one `link(2)` per unchanged file. The
/// objects are mode 0444 (0555 for executables) and owned by the agent: a worker running as the
/// app's user cannot write them, so no release can alter another through a shared inode.
/// Build steps replace files (write a new one, rename it over) rather than edit them in place.
struct ObjectStore {
    let root: String

    struct Stats: Sendable {
        var linked = 0
        var written = 0
        var bytesWritten = 0
    }

    /// Puts the blob `oid` at `destination`, linking the stored object, storing it first when new.
    func place(oid: String, executable: Bool, at destination: String, stats: inout Stats, content: () throws -> [UInt8]) throws {
        let object = objectPath(oid: oid, executable: executable)
        if link(object, destination) == 0 {
            stats.linked += 1
            return
        }
        let linkError = errno
        if linkError == ENOENT {
            let bytes = try content()
            try store(bytes, at: object, executable: executable)
            stats.written += 1
            stats.bytesWritten += bytes.count
            if link(object, destination) == 0 { return }
        }
        // EMLINK (too many links), EXDEV, EPERM: a private copy is always correct.
        let bytes = try content()
        try writeCopy(bytes, to: destination, executable: executable)
        stats.written += 1
        stats.bytesWritten += bytes.count
    }

    private func objectPath(oid: String, executable: Bool) -> String {
        let prefix = oid.prefix(2), rest = oid.dropFirst(2)
        return "\(root)/\(prefix)/\(rest)\(executable ? ".x" : "")"
    }

    private func store(_ bytes: [UInt8], at object: String, executable: Bool) throws {
        let folder = String(object[..<object.lastIndex(of: "/")!])
        try FileOps.makeDirectories(folder)
        let temp = "\(folder)/.tmp-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        try writeCopy(bytes, to: temp, executable: executable)
        guard rename(temp, object) == 0 else {
            let code = errno
            unlink(temp)
            throw SystemError("storing object", path: object, code: code)
        }
    }

    private func writeCopy(_ bytes: [UInt8], to path: String, executable: Bool) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SystemError("writing", path: path) }
        defer { close(fd) }
        try FileOps.writeAll(fd, bytes, path: path)
        guard fchmod(fd, executable ? 0o555 : 0o444) == 0 else { throw SystemError("setting the mode of", path: path) }
    }

    /// Deletes objects no release links to any more (link count 1: only the store holds them).
    @discardableResult
    func collectGarbage() -> Int {
        var removed = 0
        for prefix in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] {
            let folder = root + "/" + prefix
            for name in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] {
                let path = folder + "/" + name
                var info = stat()
                guard lstat(path, &info) == 0 else { continue }
                if name.hasPrefix(".tmp-") || info.st_nlink <= 1 {
                    if unlink(path) == 0 { removed += 1 }
                }
            }
            rmdir(folder)
        }
        return removed
    }
}
