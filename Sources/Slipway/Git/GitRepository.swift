import CGit2
import Foundation

/// A bare git repository that Slipway owns: a mirror it fetches into and reads commits from
/// without ever checking anything out. Not thread-safe: use one per task.
public final class GitRepository {
    let pointer: OpaquePointer
    public let path: String

    private init(pointer: OpaquePointer, path: String) {
        self.pointer = pointer
        self.path = path
    }

    deinit {
        git_repository_free(pointer)
    }

    /// Opens the bare mirror at `path`, creating it (and its parent folders) when missing.
    public static func openMirror(at path: String) throws(GitError) -> GitRepository {
        LibGit2.ensureInitialised()
        var repo: OpaquePointer?
        if FileManager.default.fileExists(atPath: path + "/HEAD") {
            try GitError.check("opening mirror \(path)", git_repository_open_bare(&repo, path))
        } else {
            try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            try GitError.check("creating mirror \(path)", git_repository_init(&repo, path, 1))
        }
        return GitRepository(pointer: repo!, path: path)
    }

    /// Fetches `refspecs` from `url` into this mirror (see `sync`: one connection, nothing
    /// downloaded when no tip moved, refs the source deleted pruned).
    @discardableResult
    public func fetch(from url: String, refspecs: [String], access: RemoteAccess = .anonymous) throws(GitError) -> SyncOutcome {
        try sync(from: url, refspecs: refspecs, access: access)
    }

    /// The commit id a reference names (`refs/heads/main`), or nil when there is no such ref.
    /// A full name (`refs/…`) is looked up as it is; anything else as git's rev-parse reads it.
    public func referenceTarget(_ name: String) throws(GitError) -> String? {
        if name.hasPrefix("refs/") { return try fullReferenceTarget(name) }
        var object: OpaquePointer?
        let code = git_revparse_single(&object, pointer, name)
        if code == GIT_ENOTFOUND.rawValue { return nil }
        try GitError.check("reading \(name)", code)
        defer { git_object_free(object) }
        var commit: OpaquePointer?
        try GitError.check("peeling \(name) to a commit", git_object_peel(&commit, object, GIT_OBJECT_COMMIT))
        defer { git_object_free(commit) }
        return Self.hex(git_object_id(commit))
    }

    /// The commit a full ref name points at, peeled through annotated tags: one lookup, where
    /// rev-parse tries six spellings of the name (and reads packed-refs for each that is missing).
    private func fullReferenceTarget(_ name: String) throws(GitError) -> String? {
        var reference: OpaquePointer?
        let code = git_reference_lookup(&reference, pointer, name)
        if code == GIT_ENOTFOUND.rawValue || code == GIT_EINVALIDSPEC.rawValue { return nil }
        try GitError.check("reading \(name)", code)
        defer { git_reference_free(reference) }
        var commit: OpaquePointer?
        try GitError.check("peeling \(name) to a commit", git_reference_peel(&commit, reference, GIT_OBJECT_COMMIT))
        defer { git_object_free(commit) }
        return Self.hex(git_object_id(commit))
    }

    /// Whether the mirror holds this commit.
    public func hasCommit(_ sha: String) -> Bool {
        var oid = git_oid()
        guard git_oid_fromstr(&oid, sha) == 0 else { return false }
        var commit: OpaquePointer?
        guard git_commit_lookup(&commit, pointer, &oid) == 0 else { return false }
        git_commit_free(commit)
        return true
    }

    /// The commit's root tree, for reading files and exporting.
    func tree(ofCommit sha: String) throws(GitError) -> GitTree {
        var oid = git_oid()
        try GitError.check("parsing commit id \(sha)", git_oid_fromstr(&oid, sha))
        var commit: OpaquePointer?
        try GitError.check("reading commit \(sha)", git_commit_lookup(&commit, pointer, &oid))
        defer { git_commit_free(commit) }
        var tree: OpaquePointer?
        try GitError.check("reading the tree of \(sha)", git_commit_tree(&tree, commit))
        return GitTree(pointer: tree!, repository: self)
    }

    /// A file read from a commit: its bytes, or nil when it is larger than the reader accepts.
    public struct StoredFile {
        public var path: String
        public var size: Int
        public var bytes: [UInt8]?
    }

    /// Every regular file below `folder` at `commit`, read straight from the object database.
    /// A file over `maxBytes` is listed with its size but not read, so one huge file cannot
    /// exhaust memory or hide the others.
    public func files(atCommit sha: String, under folder: String, matching include: (String) -> Bool,
                      maxBytes: Int = 1 << 20) throws(GitError) -> [StoredFile] {
        let root = try tree(ofCommit: sha)
        let start: GitTree
        if folder == "." || folder.isEmpty {
            start = root
        } else {
            guard let subtree = try root.subtree(at: folder) else { return [] }
            start = subtree
        }
        var result: [StoredFile] = []
        try start.walk(prefix: folder == "." ? "" : folder) { (path, entry) throws(GitError) in
            guard entry.kind == .file || entry.kind == .executable, include(path) else { return }
            let size = try blobSize(entry.oid, describing: path)
            result.append(StoredFile(path: path, size: size,
                                     bytes: size > maxBytes ? nil : try blobBytes(entry.oid, maxBytes: maxBytes, describing: path)))
        }
        return result
    }

    func blobBytes(_ oid: git_oid, maxBytes: Int, describing path: String) throws(GitError) -> [UInt8] {
        var oid = oid
        var blob: OpaquePointer?
        try GitError.check("reading \(path)", git_blob_lookup(&blob, pointer, &oid))
        defer { git_blob_free(blob) }
        let size = Int(git_blob_rawsize(blob))
        if size > maxBytes {
            throw GitError(operation: "reading \(path)", message: "the file is \(size) bytes; at most \(maxBytes) are read", code: -1)
        }
        guard size > 0, let raw = git_blob_rawcontent(blob) else { return [] }
        return Array(UnsafeRawBufferPointer(start: raw, count: size))
    }

    func blobSize(_ oid: git_oid, describing path: String) throws(GitError) -> Int {
        var oid = oid
        var blob: OpaquePointer?
        try GitError.check("reading \(path)", git_blob_lookup(&blob, pointer, &oid))
        defer { git_blob_free(blob) }
        return Int(git_blob_rawsize(blob))
    }

    /// Calls `body` with the blob's bytes in place (no copy); the buffer is valid only inside `body`.
    func withBlob<T>(_ oid: git_oid, describing path: String, _ body: (UnsafeRawBufferPointer) throws -> T) throws -> T {
        var oid = oid
        var blob: OpaquePointer?
        try GitError.check("reading \(path)", git_blob_lookup(&blob, pointer, &oid))
        defer { git_blob_free(blob) }
        return try body(UnsafeRawBufferPointer(start: git_blob_rawcontent(blob), count: Int(git_blob_rawsize(blob))))
    }

    static func hex(_ oid: UnsafePointer<git_oid>?) -> String {
        guard let oid else { return "" }
        // One string made in place (an export names 5,000 objects: no arrays on the way).
        return String(unsafeUninitializedCapacity: Int(GIT_OID_HEXSZ)) { buffer in
            buffer.withMemoryRebound(to: CChar.self) { _ = git_oid_fmt($0.baseAddress, oid) }
            return Int(GIT_OID_HEXSZ)
        }
    }
}
