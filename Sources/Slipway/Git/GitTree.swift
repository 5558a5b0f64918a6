import CGit2

/// A tree object of a `GitRepository`, walked entry by entry without a checkout.
final class GitTree {
    let pointer: OpaquePointer
    let repository: GitRepository

    init(pointer: OpaquePointer, repository: GitRepository) {
        self.pointer = pointer
        self.repository = repository
    }

    deinit {
        git_tree_free(pointer)
    }

    struct Entry {
        enum Kind { case file, executable, symlink, directory, submodule }
        var name: String
        var oid: git_oid
        var kind: Kind
    }

    var entries: [Entry] {
        (0..<git_tree_entrycount(pointer)).compactMap { index in
            guard let entry = git_tree_entry_byindex(pointer, index) else { return nil }
            let kind: Entry.Kind
            switch git_tree_entry_filemode(entry) {
            case GIT_FILEMODE_BLOB: kind = .file
            case GIT_FILEMODE_BLOB_EXECUTABLE: kind = .executable
            case GIT_FILEMODE_LINK: kind = .symlink
            case GIT_FILEMODE_TREE: kind = .directory
            case GIT_FILEMODE_COMMIT: kind = .submodule
            default: return nil
            }
            return Entry(name: String(cString: git_tree_entry_name(entry)), oid: git_tree_entry_id(entry).pointee, kind: kind)
        }
    }

    /// The subtree at a slash-separated path, or nil when there is none.
    func subtree(at path: String) throws(GitError) -> GitTree? {
        var entry: OpaquePointer?
        let code = git_tree_entry_bypath(&entry, pointer, path)
        if code == GIT_ENOTFOUND.rawValue { return nil }
        try GitError.check("looking up \(path)", code)
        defer { git_tree_entry_free(entry) }
        guard git_tree_entry_type(entry) == GIT_OBJECT_TREE else { return nil }
        return try lookup(git_tree_entry_id(entry).pointee, describing: path)
    }

    func lookup(_ oid: git_oid, describing path: String) throws(GitError) -> GitTree {
        var oid = oid
        var tree: OpaquePointer?
        try GitError.check("reading tree \(path)", git_tree_lookup(&tree, repository.pointer, &oid))
        return GitTree(pointer: tree!, repository: repository)
    }

    /// Visits every entry below this tree, depth first, with its path from `prefix`.
    func walk(prefix: String, _ visit: (String, Entry) throws(GitError) -> Void) throws(GitError) {
        for entry in entries {
            let path = prefix.isEmpty ? entry.name : prefix + "/" + entry.name
            try visit(path, entry)
            if entry.kind == .directory {
                try lookup(entry.oid, describing: path).walk(prefix: path, visit)
            }
        }
    }
}
