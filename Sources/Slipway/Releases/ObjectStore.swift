import Foundation
import Dispatch
import Synchronization

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

        mutating func add(_ other: Self) {
            linked += other.linked
            written += other.written
            bytesWritten += other.bytesWritten
        }
    }

    /// The store's folders (`ab/` of object `abcd…`), each opened once for an export and shared
    /// by its threads, so placing a file is one `linkat(2)` between two open folders instead of
    /// a walk of both paths from `/` (a tenth of a 5,000-file export's system time).
    final class Folders: Sendable {
        private let root: String
        /// By prefix byte: an open folder, `missing`, or `unopened`.
        private let descriptors = Mutex([Int32](repeating: unopened, count: 256))
        private static let unopened: Int32 = -1, missing: Int32 = -2

        init(_ store: ObjectStore) {
            root = store.root
        }

        deinit {
            descriptors.withLock { $0.forEach { if $0 >= 0 { close($0) } } }
        }

        /// The open folder for objects starting with the byte `prefix`, made first when
        /// `create`; nil when it does not exist (so neither does any object in it).
        func descriptor(_ prefix: Int, create: Bool) throws -> Int32? {
            try descriptors.withLock { descriptors in
                if descriptors[prefix] >= 0 { return descriptors[prefix] }
                if descriptors[prefix] == Self.missing && !create { return nil }
                let folder = root + "/" + ObjectStore.hexByte(prefix)
                var fd = open(folder, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if fd < 0 && errno == ENOENT {
                    guard create else {
                        descriptors[prefix] = Self.missing
                        return nil
                    }
                    if mkdir(folder, 0o755) != 0 && errno != EEXIST { try FileOps.makeDirectories(folder) }
                    fd = open(folder, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                }
                guard fd >= 0 else { throw SystemError("opening the object folder", path: folder) }
                descriptors[prefix] = fd
                return fd
            }
        }
    }

    /// A place in a folder being filled: the folder open, the name in it, and its path (for errors).
    struct Destination {
        var folder: Int32
        var folderPath: String
        var name: String
        var path: String { folderPath + "/" + name }
    }

    /// Puts the blob `oid` at `destination`: a link to the stored object when there is one;
    /// otherwise the file is written at `destination` and then linked into the store, so an
    /// object only ever appears complete (a crash mid-write leaves no half object behind).
    /// `content` hands the bytes to the closure it is given, so blobs are written without a copy.
    func place(oid: String, executable: Bool, at destination: Destination, folders: Folders, stats: inout Stats,
               content: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        let prefix = Self.prefix(of: oid)
        let object = String(oid.dropFirst(2)) + (executable ? ".x" : "")
        let folder = try folders.descriptor(prefix, create: false)
        if let folder, linkat(folder, object, destination.folder, destination.name, 0) == 0 {
            stats.linked += 1
            return
        }
        let missing = folder == nil || errno == ENOENT
        var written = 0
        try content { bytes in
            try writeReadOnly(bytes, in: destination, executable: executable)
            written = bytes.count
        }
        stats.written += 1
        stats.bytesWritten += written
        // EMLINK (too many links), EXDEV, EPERM: the private copy just written is correct as it is.
        guard missing, let store = try folders.descriptor(prefix, create: true) else { return }
        if linkat(destination.folder, destination.name, store, object, 0) != 0 && errno != EEXIST && errno != EMLINK {
            throw SystemError("storing object", path: objectPath(oid: oid, executable: executable))
        }
    }

    /// The folder an object id belongs in, as a number (`3f…` → 63).
    static func prefix(of oid: String) -> Int {
        Int(oid.prefix(2), radix: 16) ?? 0
    }

    /// A folder's name from its number (63 → `3f`).
    private static func hexByte(_ value: Int) -> String {
        (value < 16 ? "0" : "") + String(value, radix: 16)
    }

    private func objectPath(oid: String, executable: Bool) -> String {
        let prefix = oid.prefix(2), rest = oid.dropFirst(2)
        return "\(root)/\(prefix)/\(rest)\(executable ? ".x" : "")"
    }

    private func writeReadOnly(_ bytes: UnsafeRawBufferPointer, in destination: Destination, executable: Bool) throws {
        let mode: mode_t = executable ? 0o555 : 0o444
        // Made with its final mode where the umask keeps it (the fd is writable all the same, and
        // only the agent can reach the staging folder): one system call a file less on a first
        // deploy of 5,000. Under another umask, fchmod sets it exactly.
        let fd = openat(destination.folder, destination.name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                        Self.umaskKeeps(mode) ? mode : 0o600)
        guard fd >= 0 else { throw SystemError("writing", path: destination.path) }
        defer { close(fd) }
        try FileOps.writeAll(fd, bytes, path: destination.path)
        if !Self.umaskKeeps(mode) {
            guard fchmod(fd, mode) == 0 else { throw SystemError("setting the mode of", path: destination.path) }
        }
    }

    /// Whether the process's umask leaves `mode` as it is (read from /proc: setting the umask to
    /// learn it would race with the other threads' creates).
    private static func umaskKeeps(_ mode: mode_t) -> Bool { mode & processUmask == 0 }

    private static let processUmask: mode_t = {
        guard let status = FileOps.readFile("/proc/self/status") else { return 0o777 }
        for line in String(decoding: status, as: UTF8.self).split(separator: "\n") where line.hasPrefix("Umask:") {
            return mode_t(line.dropFirst(6).trimmingCharacters(in: .whitespaces), radix: 8) ?? 0o777
        }
        return 0o777
    }()

    /// Deletes objects no release links to any more (link count 1: only the store holds them).
    /// The store's 256 folders are looked through side by side, one thread per core, each
    /// entry stat'ed and unlinked by name in its open folder (no path walked from `/` per object).
    @discardableResult
    func collectGarbage() -> Int {
        guard let opened = try? DirectoryHandle.open(root), let folders = try? opened.entries() else { return 0 }
        // Only read (its fd) by the threads below.
        nonisolated(unsafe) let store = opened
        var removed = [Int](repeating: 0, count: folders.count)
        removed.withUnsafeMutableBufferPointer { counts in
            // Each iteration writes only its own slot; the store's handle is only read.
            nonisolated(unsafe) let counts = counts
            DispatchQueue.concurrentPerform(iterations: folders.count) { index in
                guard let folder = try? store.openDirectory(folders[index].name), let names = try? folder.entries() else { return }
                for (name, _) in names {
                    guard let info = folder.status(of: name), info.st_mode & S_IFMT == S_IFREG, info.st_nlink <= 1 else { continue }
                    if folder.unlink(name) == 0 { counts[index] += 1 }
                }
                if counts[index] == names.count { _ = store.unlink(folders[index].name, directory: true) }
            }
        }
        return removed.reduce(0, +)
    }
}
