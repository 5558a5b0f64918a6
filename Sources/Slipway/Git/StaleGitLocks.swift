import Foundation

/// The lock files (`refs/heads/main.lock`, `packed-refs.lock`, `config.lock`...) an agent killed
/// in the middle of a fetch leaves in its mirrors. libgit2 takes each with `O_EXCL` and refuses
/// to update what one guards ("failed to lock file '…/refs/heads/main.lock' for writing"), so a
/// lock left behind stopped every later fetch of that mirror, for good (seen in the kill -9 at
/// random points of WorkerTrackingTests). Only the agent writes its mirrors, and it holds the
/// state directory's lock (`AgentLock`), so at its start every lock in them is a dead agent's.
enum StaleGitLocks {
    /// Removes them from every mirror below `root` (`<state_dir>/mirrors`: `manifests.git`,
    /// `sources/*.git`); returns the paths removed. Looks at a repository's top level, `refs/`
    /// and `logs/` (where libgit2 locks), never at its objects; walks by directory fd
    /// (`DirectoryHandle`), so no symlink is followed.
    static func remove(mirrors root: String) -> [String] {
        var removed: [String] = []
        for repository in repositories(below: root) {
            guard let top = try? DirectoryHandle.open(repository) else { continue }
            removeLocks(in: top, recursing: false, into: &removed)
            for folder in ["refs", "logs"] {
                if let below = try? top.openDirectory(EntryName(folder)) { removeLocks(in: below, recursing: true, into: &removed) }
            }
        }
        return removed.sorted()
    }

    /// The bare repositories (a directory holding `HEAD`) at most two levels below `root`.
    static func repositories(below root: String) -> [String] {
        func isRepository(_ path: String) -> Bool { FileOps.lstatMode(path + "/HEAD") == S_IFREG }
        var found: [String] = []
        for path in entries(of: root).map({ root + "/" + $0 }) where FileOps.isDirectory(path) {
            if isRepository(path) {
                found.append(path)
            } else {
                found += entries(of: path).map { path + "/" + $0 }.filter { FileOps.isDirectory($0) && isRepository($0) }
            }
        }
        return found
    }

    /// Unlinks the regular files named `*.lock` in `directory` (and, `recursing`, below it).
    private static func removeLocks(in directory: DirectoryHandle, recursing: Bool, depth: Int = 0, into removed: inout [String]) {
        guard depth < 32, let entries = try? directory.entries() else { return }
        for (name, mayBeDirectory) in entries {
            if recursing, mayBeDirectory, let child = try? directory.openDirectory(name) {
                removeLocks(in: child, recursing: true, depth: depth + 1, into: &removed)
                continue
            }
            guard name.text.hasSuffix(".lock"), directory.status(of: name).map({ $0.st_mode & S_IFMT == S_IFREG }) == true,
                  directory.unlink(name) == 0 else { continue }
            removed.append(directory.path + "/" + name.text)
        }
    }

    private static func entries(of directory: String) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    }
}
