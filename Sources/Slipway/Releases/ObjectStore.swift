import Foundation
import Dispatch

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

    /// Puts the blob `oid` at `destination`: a link to the stored object when there is one;
    /// otherwise the file is written at `destination` and then linked into the store, so an
    /// object only ever appears complete (a crash mid-write leaves no half object behind).
    /// `content` hands the bytes to the closure it is given, so blobs are written without a copy.
    func place(oid: String, executable: Bool, at destination: String, stats: inout Stats,
               content: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        let object = objectPath(oid: oid, executable: executable)
        if link(object, destination) == 0 {
            stats.linked += 1
            return
        }
        let missing = errno == ENOENT
        var written = 0
        try content { bytes in
            try writeReadOnly(bytes, to: destination, executable: executable)
            written = bytes.count
        }
        stats.written += 1
        stats.bytesWritten += written
        // EMLINK (too many links), EXDEV, EPERM: the private copy just written is correct as it is.
        guard missing else { return }
        let folder = String(object[..<object.lastIndex(of: "/")!])
        if mkdir(folder, 0o755) != 0 && errno != EEXIST {
            try FileOps.makeDirectories(folder)
        }
        if link(destination, object) != 0 && errno != EEXIST && errno != EMLINK {
            throw SystemError("storing object", path: object)
        }
    }

    private func objectPath(oid: String, executable: Bool) -> String {
        let prefix = oid.prefix(2), rest = oid.dropFirst(2)
        return "\(root)/\(prefix)/\(rest)\(executable ? ".x" : "")"
    }

    private func writeReadOnly(_ bytes: UnsafeRawBufferPointer, to path: String, executable: Bool) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SystemError("writing", path: path) }
        defer { close(fd) }
        try FileOps.writeAll(fd, bytes, path: path)
        guard fchmod(fd, executable ? 0o555 : 0o444) == 0 else { throw SystemError("setting the mode of", path: path) }
    }

    /// Deletes objects no release links to any more (link count 1: only the store holds them).
    /// The store's 256 folders are looked through side by side, one thread per core.
    @discardableResult
    func collectGarbage() -> Int {
        let prefixes = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        var removed = [Int](repeating: 0, count: prefixes.count)
        removed.withUnsafeMutableBufferPointer { counts in
            // Each iteration writes only its own slot.
            nonisolated(unsafe) let counts = counts
            DispatchQueue.concurrentPerform(iterations: prefixes.count) { index in
                let folder = root + "/" + prefixes[index]
                let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
                for name in names {
                    let path = folder + "/" + name
                    var info = stat()
                    guard lstat(path, &info) == 0 else { continue }
                    if info.st_nlink <= 1 {
                        if unlink(path) == 0 { counts[index] += 1 }
                    }
                }
                if counts[index] == names.count { rmdir(folder) }
            }
        }
        return removed.reduce(0, +)
    }
}
