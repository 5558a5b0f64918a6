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
    /// and `logs/` (where libgit2 locks), never at its objects; follows no symlink.
    static func remove(mirrors root: String) -> [String] {
        var removed: [String] = []
        for repository in repositories(below: root) {
            var candidates = entries(of: repository).map { repository + "/" + $0 }
            for folder in ["refs", "logs"] { candidates += files(below: repository + "/" + folder) }
            for path in candidates where path.hasSuffix(".lock") && isRegularFile(path) {
                if unlink(path) == 0 { removed.append(path) }
            }
        }
        return removed.sorted()
    }

    /// The bare repositories (a directory holding `HEAD`) at most two levels below `root`.
    static func repositories(below root: String) -> [String] {
        var found: [String] = []
        for name in entries(of: root) {
            let path = root + "/" + name
            guard isDirectory(path) else { continue }
            if isRegularFile(path + "/HEAD") {
                found.append(path)
                continue
            }
            for inner in entries(of: path) where isDirectory(path + "/" + inner) && isRegularFile(path + "/" + inner + "/HEAD") {
                found.append(path + "/" + inner)
            }
        }
        return found
    }

    /// Every path below `directory`, descending into real directories only (`lstat`).
    private static func files(below directory: String, depth: Int = 0) -> [String] {
        guard depth < 32, isDirectory(directory) else { return [] }
        return entries(of: directory).flatMap { name -> [String] in
            let path = directory + "/" + name
            return isDirectory(path) ? files(below: path, depth: depth + 1) : [path]
        }
    }

    private static func entries(of directory: String) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    }

    private static func isDirectory(_ path: String) -> Bool { fileType(path) == S_IFDIR }

    private static func isRegularFile(_ path: String) -> Bool { fileType(path) == S_IFREG }

    /// The type `lstat` reports: a symlink is neither a directory nor a file here.
    private static func fileType(_ path: String) -> mode_t? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return info.st_mode & S_IFMT
    }
}
