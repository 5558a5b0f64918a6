import CGit2
import Dispatch
import Foundation
import Synchronization

/// The cold path for a source on a local path, the way `git clone --local` does it: the source's
/// object files are hard-linked into the new mirror (copied where they belong to another account,
/// so no one but the agent can change an object the mirror holds), its refs written, and no pack
/// is built. libgit2 1.5 cannot do this in a fetch: its local transport packs every object the
/// mirror's refs do not reach (2.4 s for a 20 MB repo here), and `git_clone` with
/// `GIT_CLONE_LOCAL` makes a clone (origin remote, `refs/remotes/origin/*`, a checkout unless
/// bare), not a mirror.
enum LocalClone {
    /// Fills the empty mirror `mirror` from the repository at `source` (a path or file:// URL);
    /// false (and the mirror left empty) when it cannot, so the caller fetches as usual.
    static func fill(_ mirror: GitRepository, from source: String, refspecs: [String]) -> Bool {
        guard let remote = LocalListing.path(of: source), isEmpty(mirror) else { return false }
        // libgit2's own checks apply (a repository another account owns is refused, as in a fetch).
        let opened = LocalListing.withRepository(at: remote) { handle -> (gitDir: String, refs: [(name: String, oid: git_oid)])? in
            guard let gitDir = git_repository_path(handle).map({ String(cString: $0) }),
                  let refs = LocalListing.coveredRefs(handle, under: refspecs) else { return nil }
            return (gitDir, refs)
        }
        guard let (gitDir, refs) = opened ?? nil else { return false }
        let from = (gitDir.hasSuffix("/") ? gitDir : gitDir + "/") + "objects"
        let into = mirror.path + "/objects"
        do {
            let folders = try FileManager.default.contentsOfDirectory(atPath: from).sorted().filter { folder in
                (folder.count == 2 && folder.allSatisfy(\.isHexDigit)) || folder == "pack"
            }
            // The folders side by side, one thread per core (a repository of 5,000 loose objects
            // is 5,000 links: the kernel's work, which two cores do in about half the time).
            let failed = Mutex<(any Error)?>(nil)
            DispatchQueue.concurrentPerform(iterations: folders.count) { index in
                let folder = folders[index]
                do {
                    try FileOps.makeDirectory(into + "/" + folder)
                    for name in try FileManager.default.contentsOfDirectory(atPath: from + "/" + folder) where !name.hasPrefix("tmp") {
                        try linkOrCopy(from + "/" + folder + "/" + name, to: into + "/" + folder + "/" + name)
                    }
                } catch {
                    failed.withLock { $0 = $0 ?? error }
                }
            }
            if let error = failed.withLock({ $0 }) { throw error }
            if let alternates = FileOps.readFile(from + "/info/alternates") {
                // Relative entries are relative to the source's objects folder: written absolute.
                let lines = String(decoding: alternates, as: UTF8.self).split(separator: "\n").map { line in
                    line.hasPrefix("/") || line.hasPrefix("#") ? String(line) : from + "/" + line
                }
                try FileOps.makeDirectory(into + "/info")
                try FileOps.writeAtomically(Array((lines.joined(separator: "\n") + "\n").utf8), to: into + "/info/alternates")
            }
            for (name, oid) in refs {
                var oid = oid
                var reference: OpaquePointer?
                guard git_reference_create(&reference, mirror.pointer, name, &oid, 1, "slipway: local clone") == 0 else { throw GitError.last("", code: -1) }
                git_reference_free(reference)
            }
            return true
        } catch {
            return false
        }
    }

    /// A new mirror: no refs and no objects yet.
    static func isEmpty(_ mirror: GitRepository) -> Bool {
        var names = git_strarray()
        guard git_reference_list(&names, mirror.pointer) == 0 else { return false }
        defer { git_strarray_dispose(&names) }
        guard names.count == 0 else { return false }
        let objects = (try? FileManager.default.contentsOfDirectory(atPath: mirror.path + "/objects")) ?? []
        return objects.allSatisfy { folder in
            folder == "info" || ((try? FileManager.default.contentsOfDirectory(atPath: mirror.path + "/objects/" + folder)) ?? []).isEmpty
        }
    }

    /// The path of a local source (`/srv/app.git`, `file:///srv/app.git`), nil for any other URL.
    /// One object file: a hard link when the agent owns it, else a private read-only copy.
    /// Never follows a symlink; anything but a regular file is skipped.
    private static func linkOrCopy(_ source: String, to destination: String) throws {
        var info = stat()
        guard lstat(source, &info) == 0 else { throw SystemError("reading", path: source) }
        guard info.st_mode & S_IFMT == S_IFREG else { return }
        if info.st_uid == geteuid(), link(source, destination) == 0 { return }
        let input = open(source, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard input >= 0 else { throw SystemError("reading", path: source) }
        defer { close(input) }
        let output = open(destination, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o444)
        guard output >= 0 else { throw SystemError("writing", path: destination) }
        defer { close(output) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = read(input, &buffer, buffer.count)
            if count < 0 { throw SystemError("reading", path: source) }
            if count == 0 { break }
            try FileOps.writeAll(output, Array(buffer[..<count]), path: destination)
        }
    }
}
