import CGit2
import Dispatch
import Foundation

/// Writes a commit's tree to a directory straight from the object database: file modes kept,
/// symlinks created as symlinks (never followed, so a link out of the tree cannot redirect a
/// write), submodules skipped. Unchanged files are hardlinks into the app's `ObjectStore`.
///
/// In three steps: the tree is read and every name checked (one thread: libgit2's tree walk),
/// every directory made (parents first), then the files placed by one thread per core, each
/// with its own handle on the repository for the blobs the store does not hold yet.
struct TreeExporter {
    let repository: GitRepository
    let store: ObjectStore
    /// Threads placing files; a tree under `parallelFloor` files is placed by the calling thread.
    var threads = ProcessInfo.processInfo.activeProcessorCount
    static let parallelFloor = 256

    struct Summary: Sendable {
        var files = 0
        var directories = 0
        var symlinks = 0
        var submodulesSkipped = 0
        var objects = ObjectStore.Stats()
    }

    /// One regular file to place: where, which blob, and its mode.
    private struct FileEntry {
        var path: String
        var relative: String
        var oid: git_oid
        var executable: Bool
    }

    func export(commit sha: String, into destination: String) throws -> Summary {
        let tree = try repository.tree(ofCommit: sha)
        try FileOps.makeDirectories(destination)
        var summary = Summary()
        var files: [FileEntry] = []
        files.reserveCapacity(1024)
        // Walked depth first, so a directory is made before anything inside it.
        try tree.walk(prefix: "") { (path, entry) throws(GitError) in
            do {
                try plan(entry, at: destination + "/" + path, relative: path, files: &files, summary: &summary)
            } catch let error as GitError {
                throw error
            } catch {
                throw GitError(operation: "exporting \(path)", message: "\(error)", code: -1)
            }
        }
        summary.files = files.count
        summary.objects = try place(files)
        return summary
    }

    private func plan(_ entry: GitTree.Entry, at path: String, relative: String, files: inout [FileEntry], summary: inout Summary) throws {
        guard entry.name != ".", entry.name != "..", entry.name != ".git", !entry.name.contains("/"), !entry.name.isEmpty else {
            throw GitError(operation: "exporting", message: "the tree holds an entry named '\(entry.name)' at '\(relative)', which is never exported", code: -1)
        }
        switch entry.kind {
        case .directory:
            guard mkdir(path, 0o755) == 0 else { throw SystemError("creating directory", path: path) }
            summary.directories += 1
        case .file, .executable:
            files.append(FileEntry(path: path, relative: relative, oid: entry.oid, executable: entry.kind == .executable))
        case .symlink:
            let target = try repository.blobBytes(entry.oid, maxBytes: 4096, describing: relative)
            guard symlink(String(decoding: target, as: UTF8.self), path) == 0 else { throw SystemError("creating symlink", path: path) }
            summary.symlinks += 1
        case .submodule:
            summary.submodulesSkipped += 1
        }
    }

    /// Places every file, in parallel when there are enough of them to pay for the threads.
    private func place(_ files: [FileEntry]) throws -> ObjectStore.Stats {
        let workers = files.count < Self.parallelFloor ? 1 : max(1, threads)
        if workers == 1 {
            var stats = ObjectStore.Stats()
            try Self.place(files[...], store: store, reader: { repository }, stats: &stats)
            return stats
        }
        // Several chunks per thread, so one slow chunk (blobs to write) does not hold the others.
        let chunks = min(files.count, workers * 8)
        let size = (files.count + chunks - 1) / chunks
        var outcomes = [Result<ObjectStore.Stats, any Error>](repeating: .success(.init()), count: chunks)
        let path = repository.path
        let store = self.store
        outcomes.withUnsafeMutableBufferPointer { results in
            // Each chunk writes only its own slot.
            nonisolated(unsafe) let results = results
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                let range = (chunk * size)..<min(files.count, (chunk + 1) * size)
                guard !range.isEmpty else { return }
                results[chunk] = Result {
                    var stats = ObjectStore.Stats()
                    // libgit2 handles are not shared between threads: a chunk that must read blobs opens its own.
                    var reader: GitRepository?
                    try Self.place(files[range], store: store, reader: {
                        if reader == nil { reader = try GitRepository.openMirror(at: path) }
                        return reader!
                    }, stats: &stats)
                    return stats
                }
            }
        }
        var total = ObjectStore.Stats()
        for outcome in outcomes {
            let stats = try outcome.get()
            total.linked += stats.linked
            total.written += stats.written
            total.bytesWritten += stats.bytesWritten
        }
        return total
    }

    private static func place(_ files: ArraySlice<FileEntry>, store: ObjectStore, reader: () throws -> GitRepository,
                              stats: inout ObjectStore.Stats) throws {
        for file in files {
            var oid = file.oid
            let hex = GitRepository.hex(&oid)
            do {
                try store.place(oid: hex, executable: file.executable, at: file.path, stats: &stats) { write in
                    try reader().withBlob(file.oid, describing: file.relative, write)
                }
            } catch let error as GitError {
                throw error
            } catch {
                throw GitError(operation: "exporting \(file.relative)", message: "\(error)", code: -1)
            }
        }
    }
}
