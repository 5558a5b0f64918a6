import CGit2
import Foundation

/// Writes a commit's tree to a directory straight from the object database: file modes kept,
/// symlinks created as symlinks (never followed, so a link out of the tree cannot redirect a
/// write), submodules skipped. Unchanged files are hardlinks into the app's `ObjectStore`.
struct TreeExporter {
    let repository: GitRepository
    let store: ObjectStore

    struct Summary: Sendable {
        var files = 0
        var directories = 0
        var symlinks = 0
        var submodulesSkipped = 0
        var objects = ObjectStore.Stats()
    }

    func export(commit sha: String, into destination: String) throws -> Summary {
        let tree = try repository.tree(ofCommit: sha)
        try FileOps.makeDirectories(destination)
        var summary = Summary()
        try tree.walk(prefix: "") { (path, entry) throws(GitError) in
            do {
                try write(entry, at: destination + "/" + path, relative: path, summary: &summary)
            } catch let error as GitError {
                throw error
            } catch {
                throw GitError(operation: "exporting \(path)", message: "\(error)", code: -1)
            }
        }
        return summary
    }

    private func write(_ entry: GitTree.Entry, at path: String, relative: String, summary: inout Summary) throws {
        guard entry.name != ".", entry.name != "..", entry.name != ".git", !entry.name.contains("/"), !entry.name.isEmpty else {
            throw GitError(operation: "exporting", message: "the tree holds an entry named '\(entry.name)' at '\(relative)', which is never exported", code: -1)
        }
        switch entry.kind {
        case .directory:
            guard mkdir(path, 0o755) == 0 else { throw SystemError("creating directory", path: path) }
            summary.directories += 1
        case .file, .executable:
            var oid = entry.oid
            let hex = GitRepository.hex(&oid)
            try store.place(oid: hex, executable: entry.kind == .executable, at: path, stats: &summary.objects) { write in
                try repository.withBlob(entry.oid, describing: relative, write)
            }
            summary.files += 1
        case .symlink:
            let target = try repository.blobBytes(entry.oid, maxBytes: 4096, describing: relative)
            guard symlink(String(decoding: target, as: UTF8.self), path) == 0 else { throw SystemError("creating symlink", path: path) }
            summary.symlinks += 1
        case .submodule:
            summary.submodulesSkipped += 1
        }
    }
}
