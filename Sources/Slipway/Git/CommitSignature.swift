import CGit2

extension GitRepository {
    /// A commit's signature (the armored `gpgsig` header, nil when unsigned) and the exact bytes
    /// it signs (the commit object without that header), straight from libgit2.
    public func signature(ofCommit sha: String) throws(GitError) -> (armored: String?, payload: [UInt8]) {
        var oid = git_oid()
        try GitError.check("parsing commit id \(sha)", git_oid_fromstr(&oid, sha))
        var signature = git_buf()
        var payload = git_buf()
        defer {
            git_buf_dispose(&signature)
            git_buf_dispose(&payload)
        }
        let code = git_commit_extract_signature(&signature, &payload, pointer, &oid, nil)
        if code == GIT_ENOTFOUND.rawValue {
            // Unsigned (or missing): the verifier reports it as unsigned.
            return (nil, [])
        }
        try GitError.check("reading the signature of \(sha)", code)
        func bytes(_ buffer: git_buf) -> [UInt8] {
            guard let ptr = buffer.ptr, buffer.size > 0 else { return [] }
            return Array(UnsafeRawBufferPointer(start: ptr, count: buffer.size))
        }
        return (String(decoding: bytes(signature), as: UTF8.self), bytes(payload))
    }

    /// Whether `commit` is `ancestor` or has it in its history.
    public func isDescendant(_ commit: String, of ancestor: String) -> Bool {
        if commit == ancestor { return true }
        var a = git_oid(), b = git_oid()
        guard git_oid_fromstr(&a, commit) == 0, git_oid_fromstr(&b, ancestor) == 0 else { return false }
        return git_graph_descendant_of(pointer, &a, &b) == 1
    }
}
