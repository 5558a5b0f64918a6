import CGit2
import Dispatch
import Foundation
import Synchronization

/// Writes a commit's tree to a directory straight from the object database: file modes kept,
/// symlinks created as symlinks (never followed, so a link out of the tree cannot redirect a
/// write), submodules skipped. Unchanged files are hardlinks into the app's `ObjectStore`.
///
/// A pipeline: the calling thread walks the tree (libgit2's tree walk, every name checked) and
/// makes each directory as it reaches it, handing the files of every `batchSize` to threads
/// that place them (one per core): each file a `linkat(2)` from the store between two open
/// folders, or, for a blob the store lacks, a write by a thread with its own libgit2 handle.
/// The walk (reading 50 trees and naming 5,000 entries took 15 to 20 ms here, the directories 5
/// to 10 ms more) so overlaps the links, where it used to come before them. A tree of fewer
/// files than one batch is placed by the calling thread alone.
struct TreeExporter {
    let repository: GitRepository
    let store: ObjectStore
    /// Threads placing files beside the walk.
    var threads = ProcessInfo.processInfo.activeProcessorCount
    static let batchSize = 256

    struct Summary: Sendable {
        var files = 0
        var directories = 0
        var symlinks = 0
        var submodulesSkipped = 0
        var objects = ObjectStore.Stats()
    }

    /// One regular file to place: its folder (an index into the export's folders), its name,
    /// which blob, and its mode.
    fileprivate struct FileEntry {
        var folder: Int
        var name: String
        var oid: git_oid
        var executable: Bool
    }

    func export(commit sha: String, into destination: String) throws -> Summary {
        let tree = try repository.tree(ofCommit: sha)
        try FileOps.makeDirectories(destination)
        let placing = Placing(store: store, mirrorPath: repository.path, destination: destination, threads: threads)
        var summary = Summary()
        var batch: [FileEntry] = []
        batch.reserveCapacity(Self.batchSize)
        do {
            // Depth first, so a directory is made before anything inside it.
            try walk(tree, folder: 0, relative: "", placing: placing, batch: &batch, summary: &summary)
        } catch {
            _ = try? placing.finish()
            throw error
        }
        if placing.dispatched == 0 {
            // Small enough for the calling thread alone (no thread woken for it).
            var stats = ObjectStore.Stats()
            try placing.place(batch[...], stats: &stats, reader: { repository })
            summary.objects = stats
        } else {
            if !batch.isEmpty { try placing.dispatch(batch) }
            summary.objects = try placing.finish()
        }
        return summary
    }

    private func walk(_ tree: GitTree, folder: Int, relative: String, placing: Placing, batch: inout [FileEntry],
                      summary: inout Summary) throws {
        // The folder's own path, looked up once for its directories and symlinks.
        var here: String?
        for index in 0..<git_tree_entrycount(tree.pointer) {
            guard let entry = git_tree_entry_byindex(tree.pointer, index) else { continue }
            let name = String(cString: git_tree_entry_name(entry))
            guard name != ".", name != "..", name != ".git", !name.utf8.contains(UInt8(ascii: "/")), !name.isEmpty else {
                throw GitError(operation: "exporting", message: "the tree holds an entry named '\(name)' at '\(relative)', which is never exported", code: -1)
            }
            let mode = git_tree_entry_filemode(entry)
            if mode == GIT_FILEMODE_BLOB || mode == GIT_FILEMODE_BLOB_EXECUTABLE {
                summary.files += 1
                batch.append(FileEntry(folder: folder, name: name, oid: git_tree_entry_id(entry).pointee, executable: mode == GIT_FILEMODE_BLOB_EXECUTABLE))
                if batch.count == Self.batchSize {
                    try placing.dispatch(batch)
                    batch.removeAll(keepingCapacity: true)
                }
                continue
            }
            let oid = git_tree_entry_id(entry).pointee
            let path = relative.isEmpty ? name : relative + "/" + name
            if here == nil { here = placing.folders.path(folder) }
            let full = here! + "/" + name
            switch mode {
            case GIT_FILEMODE_TREE:
                guard mkdir(full, 0o755) == 0 else { throw SystemError("creating directory", path: full) }
                summary.directories += 1
                let child = placing.folders.add(full, relative: path)
                try walk(tree.lookup(oid, describing: path), folder: child, relative: path, placing: placing, batch: &batch, summary: &summary)
            case GIT_FILEMODE_LINK:
                let target = try repository.blobBytes(oid, maxBytes: 4096, describing: path)
                guard symlink(String(decoding: target, as: UTF8.self), full) == 0 else { throw SystemError("creating symlink", path: full) }
                summary.symlinks += 1
            case GIT_FILEMODE_COMMIT:
                summary.submodulesSkipped += 1
            default:
                continue
            }
        }
    }
}

/// The folders of one export, the destination first; the walk adds to it while placing threads
/// read from it, so it is behind a lock (taken once per folder a batch opens, not per file).
private final class ExportFolders: Sendable {
    private let entries: Mutex<[(path: String, relative: String)]>

    init(destination: String) {
        entries = Mutex([(destination, "")])
    }

    func add(_ path: String, relative: String) -> Int {
        entries.withLock { entries in
            entries.append((path, relative))
            return entries.count - 1
        }
    }

    func path(_ index: Int) -> String { entries.withLock { $0[index].path } }
    func relative(_ index: Int) -> String { entries.withLock { $0[index].relative } }
}

/// The placing side of one export: `threads` threads of its own (started with the first batch)
/// take the batches the walk hands over, each with its own libgit2 handle when it must read
/// blobs. (The global dispatch queue ran them one at a time beside the walking thread.)
private final class Placing: @unchecked Sendable {
    let store: ObjectStore
    let storeFolders: ObjectStore.Folders
    let folders: ExportFolders
    let mirrorPath: String
    private let threads: Int
    private let group = DispatchGroup()
    /// Batches waiting. Each is signalled on `waiting` once appended; at the end one signal
    /// more per thread finds the queue empty, and that thread ends.
    private let queue = Mutex<[[TreeExporter.FileEntry]]>([])
    private let waiting = DispatchSemaphore(value: 0)
    /// At most two batches a thread wait: the walk pauses there, so memory stays bounded.
    private let room: DispatchSemaphore
    private let outcomes = Mutex<(stats: ObjectStore.Stats, error: (any Error)?)>((ObjectStore.Stats(), nil))
    // Touched only by the walking thread.
    private(set) var dispatched = 0

    init(store: ObjectStore, mirrorPath: String, destination: String, threads: Int) {
        self.store = store
        storeFolders = ObjectStore.Folders(store)
        folders = ExportFolders(destination: destination)
        self.mirrorPath = mirrorPath
        self.threads = max(1, threads)
        room = DispatchSemaphore(value: 2 * self.threads)
    }

    /// Hands `batch` to a placing thread; throws the error an earlier batch met, ending the walk.
    func dispatch(_ batch: [TreeExporter.FileEntry]) throws {
        if let error = outcomes.withLock({ $0.error }) { throw error }
        if dispatched == 0 {
            for _ in 0..<threads { startThread() }
        }
        dispatched += 1
        room.wait()
        queue.withLock { $0.append(batch) }
        waiting.signal()
    }

    private func startThread() {
        group.enter()
        Thread.detachNewThread { [self] in
            defer { group.leave() }
            var reader: GitRepository?
            while true {
                waiting.wait()
                guard let batch = queue.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else { return }
                defer { room.signal() }
                if outcomes.withLock({ $0.error != nil }) { continue }
                var stats = ObjectStore.Stats()
                do {
                    try place(batch[...], stats: &stats, reader: {
                        if reader == nil { reader = try GitRepository.openMirror(at: mirrorPath) }
                        return reader!
                    })
                    outcomes.withLock { $0.stats.add(stats) }
                } catch {
                    outcomes.withLock { if $0.error == nil { $0.error = error } }
                }
            }
        }
    }

    /// Waits for every batch; their stats, or the first error one met.
    @discardableResult
    func finish() throws -> ObjectStore.Stats {
        if dispatched > 0 {
            // One wake-up per thread with the queue empty: each ends.
            for _ in 0..<threads { waiting.signal() }
            group.wait()
        }
        let (stats, error) = outcomes.withLock { $0 }
        if let error { throw error }
        return stats
    }

    /// Places a run of files; each folder is opened once for the run of its files (the walk
    /// lists a folder's files together), never walked by path again for each file.
    func place(_ files: ArraySlice<TreeExporter.FileEntry>, stats: inout ObjectStore.Stats, reader: () throws -> GitRepository) throws {
        var openFolder = -1
        var descriptor: Int32 = -1
        var folderPath = ""
        defer { if descriptor >= 0 { close(descriptor) } }
        for file in files {
            if file.folder != openFolder {
                if descriptor >= 0 { close(descriptor) }
                folderPath = folders.path(file.folder)
                descriptor = open(folderPath, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard descriptor >= 0 else { throw SystemError("opening the folder", path: folderPath) }
                openFolder = file.folder
            }
            var oid = file.oid
            let destination = ObjectStore.Destination(folder: descriptor, folderPath: folderPath, name: file.name)
            do {
                try store.place(oid: GitRepository.hex(&oid), executable: file.executable, at: destination, folders: storeFolders,
                                stats: &stats) { write in
                    try reader().withBlob(file.oid, describing: relative(file), write)
                }
            } catch let error as GitError {
                throw error
            } catch {
                throw GitError(operation: "exporting \(relative(file))", message: "\(error)", code: -1)
            }
        }
    }

    private func relative(_ file: TreeExporter.FileEntry) -> String {
        let folder = folders.relative(file.folder)
        return folder.isEmpty ? file.name : folder + "/" + file.name
    }
}
