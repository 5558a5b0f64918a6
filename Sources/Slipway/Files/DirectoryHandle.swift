import Foundation

/// An open directory: every operation below it names an entry relative to this fd, so a
/// directory swapped for a symlink after it was opened changes nothing about what is reached.
/// Entries are opened with `O_NOFOLLOW`, so a symlink in the tree is never followed either.
final class DirectoryHandle {
    let fd: Int32
    /// For messages only: never re-resolved.
    let path: String

    private init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit { close(fd) }

    /// Opens `path` itself. Its last component must be a real directory (not a symlink); the
    /// components before it are the operator's and the agent's own (apps_root, state_dir, the
    /// app's root-owned `.slipway/`), which an app account cannot change, so a symlink there
    /// (e.g. `/srv -> /data/srv`) is followed like any path the operator chose.
    static func open(_ path: String) throws -> DirectoryHandle {
        let fd = Foundation.open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError("opening directory", path: path) }
        return DirectoryHandle(fd: fd, path: path)
    }

    /// The directory entry `name` below this one, if it is a real directory right now; nil when
    /// it is anything else (a symlink, a file) or gone. Throws only for other failures.
    func openDirectory(_ name: EntryName) throws -> DirectoryHandle? {
        let child = name.withCString { openat(fd, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
        if child < 0 {
            if errno == ELOOP || errno == ENOTDIR || errno == ENOENT { return nil }
            throw SystemError("opening directory", path: path + "/" + name.text)
        }
        return DirectoryHandle(fd: child, path: path + "/" + name.text)
    }

    /// The entry `name` opened for reading without following it and without blocking (a FIFO
    /// would otherwise hang the agent): an fd on exactly the inode that was there, or nil when it
    /// cannot be opened that way (a symlink, a socket, gone).
    func openFile(_ name: EntryName) -> Int32? {
        let child = name.withCString { openat(fd, $0, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC) }
        return child >= 0 ? child : nil
    }

    /// lstat of an entry (`fstatat` with `AT_SYMLINK_NOFOLLOW`).
    func status(of name: EntryName) -> stat? {
        var info = stat()
        let rc = name.withCString { fstatat(fd, $0, &info, AT_SYMLINK_NOFOLLOW) }
        return rc == 0 ? info : nil
    }

    /// The directory's own status (of the inode this handle holds).
    func status() throws -> stat {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw SystemError("reading the status of", path: path) }
        return info
    }

    /// Every entry but `.` and `..`: its name as the bytes the kernel returned, and whether
    /// readdir saw a directory (a hint only: whatever is opened is opened with `O_NOFOLLOW`).
    func entries() throws -> [(name: EntryName, mayBeDirectory: Bool)] {
        let copy = dup(fd)
        guard copy >= 0, let stream = fdopendir(copy) else {
            let code = errno
            throw SystemError("listing directory", path: path, code: code)
        }
        defer { closedir(stream) }
        rewinddir(stream)
        var names: [(name: EntryName, mayBeDirectory: Bool)] = []
        while true {
            errno = 0
            guard let entry = readdir(stream) else {
                if errno != 0 { throw SystemError("listing directory", path: path) }
                return names
            }
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { EntryName(cString: $0) }
            }
            let type = entry.pointee.d_type
            if !name.isDotOrDotDot { names.append((name, type == UInt8(DT_DIR) || type == UInt8(DT_UNKNOWN))) }
        }
    }

    /// Removes a non-directory entry (a file, a symlink, a FIFO): only this name goes; if it is a
    /// hard link to a file elsewhere, that file stays where it is. Returns the errno on failure.
    func unlink(_ name: EntryName, directory: Bool = false) -> Int32 {
        let rc = name.withCString { unlinkat(fd, $0, directory ? AT_REMOVEDIR : 0) }
        return rc == 0 ? 0 : errno
    }

    func makeDirectory(_ name: EntryName, mode: mode_t) -> Int32 {
        let rc = name.withCString { mkdirat(fd, $0, mode) }
        return rc == 0 ? 0 : errno
    }

    /// Gives the directory itself (the inode held open) to `uid:gid` with `mode`.
    func set(owner: (uid: uid_t, gid: gid_t)?, mode: mode_t?) throws {
        if let owner, fchown(fd, owner.uid, owner.gid) != 0 { throw SystemError("changing the owner of", path: path) }
        if let mode, fchmod(fd, mode) != 0 { throw SystemError("changing the mode of", path: path) }
    }
}

/// One directory entry's name, kept as the exact bytes (a name need not be valid UTF-8).
struct EntryName: Hashable, Sendable {
    let bytes: [CChar]  // NUL-terminated

    init(cString: UnsafePointer<CChar>) {
        let count = strlen(cString)
        bytes = Array(UnsafeBufferPointer(start: cString, count: count + 1))
    }

    init(_ text: String) {
        bytes = Array(text.utf8CString)
    }

    var isDotOrDotDot: Bool {
        (bytes.count == 2 && bytes[0] == 0x2e) || (bytes.count == 3 && bytes[0] == 0x2e && bytes[1] == 0x2e)
    }

    var text: String { String(decoding: bytes.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self) }

    func withCString<T>(_ body: (UnsafePointer<CChar>) throws -> T) rethrows -> T {
        try bytes.withUnsafeBufferPointer { try body($0.baseAddress!) }
    }
}
