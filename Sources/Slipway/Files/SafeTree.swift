import Foundation

/// Every walk the agent (root) makes through a tree an app account can write: a build's
/// staging tree, a crashed deploy's leftovers, `shared/`. Nothing else walks such trees.
///
/// The rules, each of which closes a race a build's process could win against a path walk:
/// - A directory is reached only by `openat(parent_fd, name, O_NOFOLLOW | O_DIRECTORY)` from
///   the fd of the directory it was listed in, never by a path resolved again from the top: a
///   directory swapped for a symlink after it was listed is simply not a directory any more.
/// - What is changed is the inode held open (`fchown`/`fchmod` on the fd), or an entry named
///   relative to a directory fd with `AT_SYMLINK_NOFOLLOW`; `unlinkat` removes one name only.
/// - When root takes a directory back (removal, sealing a release), it first makes that
///   directory its own and closed to others, then lists it: from then on the account cannot
///   add, rename or swap entries in it while root works there.
enum SafeTree {
    /// Deeper than this, a tree is refused (a git tree never is; a build may make one to exhaust
    /// the agent's fds). Removal instead moves a deep subtree up and carries on.
    static let maxDepth = 128

    struct TooDeep: Error, CustomStringConvertible {
        var path: String
        var description: String {
            "\(path) is more than \(SafeTree.maxDepth) directories deep; Slipway refuses trees that deep (flatten the build's output)"
        }
    }

    private static var agent: (uid: uid_t, gid: gid_t) { (geteuid(), getegid()) }
    private static var isRoot: Bool { geteuid() == 0 }

    // MARK: Removing

    /// Removes a file, a symlink or a whole directory tree at `path`; nothing outside it is ever
    /// touched, whatever a process of the tree's owner does meanwhile. A missing path is fine.
    static func remove(_ path: String) throws {
        let (parentPath, name) = split(path)
        let parent: DirectoryHandle
        do {
            parent = try DirectoryHandle.open(parentPath)
        } catch let error as SystemError where error.code == ENOENT {
            return
        }
        try remove(name, in: parent)
    }

    static func remove(_ name: EntryName, in parent: DirectoryHandle) throws {
        switch parent.unlink(name) {
        case 0, ENOENT: return
        case EISDIR, EPERM: break  // a directory (EPERM: what some file systems say for one)
        case let code: throw SystemError("removing", path: parent.path + "/" + name.text, code: code)
        }
        guard let top = try parent.openDirectory(name) else {
            // It changed between the two calls: whatever it is now is not a directory.
            let code = parent.unlink(name)
            if code != 0 && code != ENOENT { throw SystemError("removing", path: parent.path + "/" + name.text, code: code) }
            return
        }
        try empty(top, top: top, depth: 0)
        let code = parent.unlink(name, directory: true)
        if code != 0 && code != ENOENT { throw SystemError("removing directory", path: top.path, code: code) }
    }

    private static func empty(_ directory: DirectoryHandle, top: DirectoryHandle, depth: Int) throws {
        let info = try directory.status()
        if isRoot {
            // Taken back first: the account cannot create entries here while we empty it.
            try directory.set(owner: info.st_uid == 0 && info.st_gid == 0 ? nil : agent, mode: 0o700)
        } else if info.st_mode & 0o700 != 0o700 {
            try directory.set(owner: nil, mode: 0o700)  // a read-only dir a build left would block unlinking
        }
        var passes = 0
        while passes < 4 {
            let entries = try directory.entries()
            if entries.isEmpty { return }
            passes += 1
            for (name, _) in entries {
                switch directory.unlink(name) {
                case 0, ENOENT: continue
                case EISDIR, EPERM: break
                case let code: throw SystemError("removing", path: directory.path + "/" + name.text, code: code)
                }
                if depth + 1 >= maxDepth {
                    // Too deep to hold another fd per level: the subtree moves up beside the top
                    // (one rename between two held fds) and is emptied from there.
                    let newName = EntryName(".slipway-deep-\(UInt64.random(in: 0...UInt64.max))")
                    let rc = name.withCString { from in newName.withCString { renameat(directory.fd, from, top.fd, $0) } }
                    if rc != 0 { throw SystemError("moving a deep directory up in", path: directory.path) }
                    passes = 0
                    continue
                }
                guard let child = try directory.openDirectory(name) else { continue }
                try empty(child, top: top, depth: depth + 1)
                let code = directory.unlink(name, directory: true)
                if code != 0 && code != ENOENT && code != ENOTEMPTY { throw SystemError("removing directory", path: child.path, code: code) }
            }
        }
        throw SystemError("removing (entries keep appearing in)", path: directory.path, code: ENOTEMPTY)
    }

    // MARK: Handing a tree to a build

    /// Gives every directory of the tree at `path` (the tree itself included) to `owner`, so
    /// the build may create files; the files stay as they are (the release's read-only objects).
    static func giveDirectories(_ path: String, to owner: (uid: uid_t, gid: gid_t)) throws {
        try giveDirectories(DirectoryHandle.open(path), to: owner, depth: 0)
    }

    private static func giveDirectories(_ directory: DirectoryHandle, to owner: (uid: uid_t, gid: gid_t), depth: Int) throws {
        guard depth < maxDepth else { throw TooDeep(path: directory.path) }
        try directory.set(owner: owner, mode: nil)
        for (name, mayBeDirectory) in try directory.entries() where mayBeDirectory {
            guard let child = try directory.openDirectory(name) else { continue }
            try giveDirectories(child, to: owner, depth: depth + 1)
        }
    }

    // MARK: Taking a built tree back

    /// What sealing changed.
    struct SealReport: Sendable, Equatable {
        var modesChanged = 0
        /// Files with hard links elsewhere (not Slipway's objects): copied, the other links untouched.
        var copied = 0
        /// FIFOs and sockets, which a release never holds.
        var removed = 0
    }

    /// Takes the built tree at `path` back from the build's account: every entry becomes the
    /// agent's; modes lose group/other write, setuid, setgid and sticky bits; a regular file with
    /// other hard links is replaced by a copy (its other names, wherever they are, stay exactly as
    /// they were) unless it is one of Slipway's own read-only objects; FIFOs and sockets go.
    @discardableResult
    static func seal(_ path: String) throws -> SealReport {
        var report = SealReport()
        try seal(DirectoryHandle.open(path), depth: 0, report: &report)
        return report
    }

    /// Owner bits kept, and group/other read and execute: nothing writable by anyone else,
    /// nothing that changes who a program runs as.
    static func sealedMode(_ mode: mode_t) -> mode_t { mode & 0o755 }

    private static func seal(_ directory: DirectoryHandle, depth: Int, report: inout SealReport) throws {
        guard depth < maxDepth else { throw TooDeep(path: directory.path) }
        let info = try directory.status()
        let mode = sealedMode(info.st_mode & 0o7777)
        if mode != info.st_mode & 0o7777 { report.modesChanged += 1 }
        // The directory is ours before it is listed: nothing in it changes under us afterwards.
        try directory.set(owner: isRoot ? agent : nil, mode: mode)
        for (name, mayBeDirectory) in try directory.entries() {
            if mayBeDirectory, let child = try directory.openDirectory(name) {
                try seal(child, depth: depth + 1, report: &report)
                continue
            }
            guard let status = directory.status(of: name) else { continue }
            switch status.st_mode & S_IFMT {
            case S_IFREG:
                try sealFile(name, status, in: directory, report: &report)
            case S_IFLNK:
                if isRoot, status.st_uid != 0 || status.st_gid != 0 {
                    _ = name.withCString { fchownat(directory.fd, $0, 0, 0, AT_SYMLINK_NOFOLLOW) }
                }
            case S_IFDIR:
                if let child = try directory.openDirectory(name) { try seal(child, depth: depth + 1, report: &report) }
            default:
                let code = directory.unlink(name)
                if code != 0 && code != ENOENT { throw SystemError("removing", path: directory.path + "/" + name.text, code: code) }
                report.removed += 1
            }
        }
    }

    /// One of Slipway's objects (`ObjectStore`): the agent's, read-only for everyone, linked
    /// into releases. Nobody else can make such a link: protected_hardlinks lets an account
    /// link only files it owns or may write.
    private static func isObject(_ info: stat) -> Bool {
        info.st_uid == geteuid() && info.st_mode & 0o7222 == 0
    }

    /// A regular file in a directory already sealed: its name can no longer be swapped, so it is
    /// changed through the directory fd (`fchownat`/`fchmodat` with `AT_SYMLINK_NOFOLLOW` where
    /// Linux has it), and only a file to copy is opened.
    private static func sealFile(_ name: EntryName, _ info: stat, in directory: DirectoryHandle, report: inout SealReport) throws {
        if isObject(info) { return }
        let mode = sealedMode(info.st_mode & 0o7777)
        if info.st_nlink > 1 {
            guard let fd = directory.openFile(name) else { return }
            defer { close(fd) }
            var opened = stat()
            guard fstat(fd, &opened) == 0, opened.st_mode & S_IFMT == S_IFREG, opened.st_ino == info.st_ino else { return }
            try copyInPlace(fd, name, in: directory, mode: mode)
            report.copied += 1
            return
        }
        let shown = directory.path + "/" + name.text
        if isRoot, info.st_uid != 0 || info.st_gid != 0 {
            guard name.withCString({ fchownat(directory.fd, $0, 0, 0, AT_SYMLINK_NOFOLLOW) }) == 0 else {
                throw SystemError("changing the owner of", path: shown)
            }
        }
        if mode != info.st_mode & 0o7777 {
            // fchmodat cannot refuse to follow a link on Linux; the entry is a regular file in a
            // directory no one else can change any more.
            guard name.withCString({ fchmodat(directory.fd, $0, mode, 0) }) == 0 else { throw SystemError("changing the mode of", path: shown) }
            report.modesChanged += 1
        }
    }

    /// Replaces `name` with a copy of the file open at `source`: a new file beside it, then
    /// renameat(2) over the name. The old inode keeps its other links, owner and mode.
    private static func copyInPlace(_ source: Int32, _ name: EntryName, in directory: DirectoryHandle, mode: mode_t) throws {
        let temp = EntryName(".slipway-copy-\(getpid())")
        _ = directory.unlink(temp)
        let out = temp.withCString { openat(directory.fd, $0, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600) }
        guard out >= 0 else { throw SystemError("copying", path: directory.path + "/" + name.text) }
        defer { close(out) }
        var buffer = [UInt8](repeating: 0, count: 128 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw SystemError("copying", path: directory.path + "/" + name.text) }
            if count == 0 { break }
            try buffer.withUnsafeBytes { try FileOps.writeAll(out, UnsafeRawBufferPointer(rebasing: $0[..<count]), path: directory.path + "/" + name.text) }
        }
        guard fchmod(out, mode) == 0 else { throw SystemError("setting the mode of", path: directory.path + "/" + name.text) }
        let rc = temp.withCString { from in name.withCString { renameat(directory.fd, from, directory.fd, $0) } }
        guard rc == 0 else {
            let code = errno
            _ = directory.unlink(temp)
            throw SystemError("replacing with a copy", path: directory.path + "/" + name.text, code: code)
        }
    }

    // MARK: Directories in a tree an app owns

    /// `root/<components>` as real directories, each made if missing (owned by `owner`, mode
    /// 0755), none reached through a symlink: `shared/uploads` swapped for a link to /etc makes
    /// this fail, it never creates anything in /etc.
    static func makeDirectories(_ components: [String], under root: String, owner: (uid: uid_t, gid: gid_t)?) throws {
        var current = try DirectoryHandle.open(root)
        for component in components {
            let name = EntryName(component)
            if let next = try current.openDirectory(name) {
                current = next
                continue
            }
            let code = current.makeDirectory(name, mode: 0o755)
            if code != 0 && code != EEXIST { throw SystemError("creating directory", path: current.path + "/" + component, code: code) }
            guard let made = try current.openDirectory(name) else {
                throw SystemError("creating directory (something that is not a directory is in the way)", path: current.path + "/" + component, code: ENOTDIR)
            }
            if code == 0, let owner, isRoot { try made.set(owner: owner, mode: nil) }
            current = made
        }
    }

    /// Hard links every regular file below `source` into `destination` at the same relative
    /// path, replacing what is there; directories are made as needed, symlinks and anything
    /// else are left out (the frontend archive serves files only).
    static func linkFiles(from source: DirectoryHandle, to destination: DirectoryHandle, skipping: EntryName? = nil, depth: Int = 0) throws {
        guard depth < maxDepth else { throw TooDeep(path: source.path) }
        for (name, mayBeDirectory) in try source.entries() where name != skipping {
            if mayBeDirectory, let from = try source.openDirectory(name) {
                var to = try destination.openDirectory(name)
                if to == nil {
                    try remove(name, in: destination)
                    let code = destination.makeDirectory(name, mode: 0o755)
                    if code != 0 { throw SystemError("creating directory", path: destination.path + "/" + name.text, code: code) }
                    to = try destination.openDirectory(name)
                }
                guard let to else { throw SystemError("creating directory", path: destination.path + "/" + name.text, code: ENOTDIR) }
                try linkFiles(from: from, to: to, depth: depth + 1)
                continue
            }
            guard let status = source.status(of: name), status.st_mode & S_IFMT == S_IFREG else { continue }
            _ = destination.unlink(name)
            // linkat without AT_SYMLINK_FOLLOW links the entry itself, never what a link names.
            let rc = name.withCString { linkat(source.fd, $0, destination.fd, $0, 0) }
            guard rc == 0 else { throw SystemError("linking into", path: destination.path + "/" + name.text) }
        }
    }

    // MARK: Links in a sealed tree

    /// Every symlink below `path` (relative path to its target). For a sealed tree only.
    static func symlinks(under path: String) throws -> [String: String] {
        var found: [String: String] = [:]
        try collectLinks(DirectoryHandle.open(path), prefix: "", depth: 0, into: &found)
        return found
    }

    private static func collectLinks(_ directory: DirectoryHandle, prefix: String, depth: Int, into found: inout [String: String]) throws {
        guard depth < maxDepth else { throw TooDeep(path: directory.path) }
        for (name, mayBeDirectory) in try directory.entries() {
            let relative = prefix + name.text
            if mayBeDirectory, let child = try directory.openDirectory(name) {
                try collectLinks(child, prefix: relative + "/", depth: depth + 1, into: &found)
                continue
            }
            guard let status = directory.status(of: name), status.st_mode & S_IFMT == S_IFLNK else { continue }
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let count = name.withCString { readlinkat(directory.fd, $0, &buffer, buffer.count - 1) }
            guard count >= 0 else { throw SystemError("reading link", path: directory.path + "/" + name.text) }
            found[relative] = String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    /// What `relative` (no symlink in it) is below `root`: its parent directory and status.
    static func locate(_ relative: String, under root: String) throws -> (parent: DirectoryHandle, name: EntryName, status: stat?) {
        var parts = relative.split(separator: "/").map(String.init)
        let last = EntryName(parts.removeLast())
        var current = try DirectoryHandle.open(root)
        for part in parts {
            guard let next = try current.openDirectory(EntryName(part)) else {
                throw SystemError("opening directory", path: current.path + "/" + part, code: ENOTDIR)
            }
            current = next
        }
        return (current, last, current.status(of: last))
    }

    /// Replaces the symlink at `link` with a hard link to the regular file at `target` (both
    /// relative to `root`, a sealed tree), so it is served without nginx following a symlink.
    static func replaceLink(_ link: String, withFile target: String, under root: String) throws {
        let from = try locate(target, under: root), to = try locate(link, under: root)
        let temp = EntryName(".slipway-link-\(getpid())")
        _ = to.parent.unlink(temp)
        let rc = from.name.withCString { source in temp.withCString { linkat(from.parent.fd, source, to.parent.fd, $0, 0) } }
        guard rc == 0 else { throw SystemError("linking", path: to.parent.path + "/" + to.name.text) }
        let moved = temp.withCString { source in to.name.withCString { renameat(to.parent.fd, source, to.parent.fd, $0) } }
        guard moved == 0 else { throw SystemError("replacing link", path: to.parent.path + "/" + to.name.text) }
    }

    static func split(_ path: String) -> (parent: String, name: EntryName) {
        guard let slash = path.lastIndex(of: "/") else { return (".", EntryName(path)) }
        let parent = slash == path.startIndex ? "/" : String(path[..<slash])
        return (parent, EntryName(String(path[path.index(after: slash)...])))
    }
}
