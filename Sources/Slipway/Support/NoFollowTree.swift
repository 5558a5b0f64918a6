import Foundation

/// Removes a directory tree that an app's account can change while it is being removed,
/// without ever following a symlink: every step is relative to an open directory fd
/// (`openat` with `O_NOFOLLOW`, `unlinkat`), so swapping a directory for a link to `/etc`
/// mid-walk removes the link, never what it points at.
enum NoFollowTree {
    /// Deepest tree removed; deeper entries are left (each level holds one fd open).
    static let maxDepth = 512

    /// Removes `path` (whose parent directory the caller trusts) and everything under it.
    static func remove(_ path: String) throws {
        guard let slash = path.lastIndex(of: "/"), slash != path.index(before: path.endIndex) else {
            throw SystemError("removing", path: path, code: EINVAL)
        }
        let parentPath = slash == path.startIndex ? "/" : String(path[..<slash])
        let parent = open(parentPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard parent >= 0 else {
            if errno == ENOENT { return }
            throw SystemError("opening", path: parentPath)
        }
        defer { close(parent) }
        try remove(String(path[path.index(after: slash)...]), in: parent, depth: 0, display: path)
    }

    private static func remove(_ name: String, in parent: Int32, depth: Int, display: String) throws {
        let fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 {
            switch errno {
            case ENOENT: return
            // A file, a symlink, a socket...: the entry itself goes.
            case ENOTDIR, ELOOP:
                if unlinkat(parent, name, 0) != 0 && errno != ENOENT { throw SystemError("removing", path: display) }
                return
            default: throw SystemError("opening", path: display)
            }
        }
        defer { close(fd) }
        guard depth < maxDepth else { throw SystemError("removing (too deep)", path: display, code: ELOOP) }
        // A directory made read-only (Go's module cache) blocks unlinking its entries for a non-root agent.
        if geteuid() != 0 { fchmod(fd, 0o700) }
        for child in try entries(of: fd, display: display) {
            try remove(child, in: fd, depth: depth + 1, display: display + "/" + child)
        }
        if unlinkat(parent, name, AT_REMOVEDIR) != 0 && errno != ENOENT { throw SystemError("removing directory", path: display) }
    }

    private static func entries(of fd: Int32, display: String) throws -> [String] {
        let copy = dup(fd)
        guard copy >= 0, let directory = fdopendir(copy) else {
            if copy >= 0 { close(copy) }
            throw SystemError("reading directory", path: display)
        }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}
