import CGit2
import Foundation
import SlipwayCore

/// What a sync with a remote did.
public enum SyncOutcome: Sendable, Equatable {
    /// The remote's refs equal the mirror's: nothing was downloaded.
    case unchanged
    case fetched
}

/// A remote's refs, as listed on connect: name → object id (hex).
public typealias RemoteRefs = [String: String]

extension GitRepository {
    /// Brings the mirror's refs under `refspecs` (identity mappings like `+refs/heads/*:refs/heads/*`)
    /// to the remote's, over one connection: list the remote's refs first and download only when
    /// a tip moved. Refs the remote deleted are pruned.
    /// A source on a local path is first asked by reading its refs (`LocalListing`), and a tip
    /// that moved there is fetched by copying its new objects (`LocalFetch`).
    @discardableResult
    public func sync(from url: String, refspecs: [String], access: RemoteAccess) throws(GitError) -> SyncOutcome {
        // A local source: nothing moved, or its new objects copied, no pack built (anything else: the transport).
        if let outcome = LocalFetch.sync(self, from: url, refspecs: refspecs), let remote = RemoteURL(url) {
            access.onConnected(remote)
            if outcome == .fetched { access.onFetched(remote) }
            return outcome
        }
        return try withConnection(to: url, access: access) { (remote, session) throws(GitError) in
            let theirs = try Self.listedRefs(remote).filter { Self.covered($0.key, by: refspecs) }
            if try localRefs(under: refspecs) == theirs { return .unchanged }
            let cStrings = refspecs.map { strdup($0) }
            defer { cStrings.forEach { free($0) } }
            var pointers = cStrings
            var callbacks = session.callbacks()
            var options = git_fetch_options()
            git_fetch_options_init(&options, UInt32(GIT_FETCH_OPTIONS_VERSION))
            options.callbacks = callbacks
            options.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE
            let code = pointers.withUnsafeMutableBufferPointer { buffer in
                var array = git_strarray(strings: buffer.baseAddress, count: buffer.count)
                return git_remote_download(remote, &array, &options)
            }
            if code < 0 { throw GitError(operation: "fetching from \(url)", message: session.failure(GitError.last("", code: code)), code: code) }
            git_remote_disconnect(remote)
            try GitError.check("updating the mirror of \(url)", git_remote_update_tips(remote, &callbacks, 0, GIT_REMOTE_DOWNLOAD_TAGS_NONE, nil))
            try GitError.check("pruning the mirror of \(url)", git_remote_prune(remote, &callbacks))
            access.onFetched(session.remote)
            return .fetched
        }
    }

    /// Connects (with credentials and host key checks) and lists the remote's refs, fetching nothing:
    /// what `slipway check` asks of every remote.
    public static func listRemote(_ url: String, access: RemoteAccess) throws(GitError) -> RemoteRefs {
        LibGit2.ensureInitialised()
        var repo: OpaquePointer?
        // An anonymous remote needs a repository; an in-memory one touches no disk.
        try GitError.check("preparing to reach \(url)", git_repository_new(&repo))
        defer { git_repository_free(repo) }
        return try connect(repo!, to: url, access: access) { (remote, _) throws(GitError) in try listedRefs(remote) }
    }

    func withConnection<T>(to url: String, access: RemoteAccess,
                           _ body: (OpaquePointer, RemoteSession) throws(GitError) -> T) throws(GitError) -> T {
        try Self.connect(pointer, to: url, access: access, body)
    }

    static func connect<T>(_ repo: OpaquePointer, to url: String, access: RemoteAccess,
                           _ body: (OpaquePointer, RemoteSession) throws(GitError) -> T) throws(GitError) -> T {
        guard let parsed = RemoteURL(url) else {
            throw GitError(operation: "fetching from \(url)", message: "not a repository location Slipway can fetch", code: -1)
        }
        let session = RemoteSession(remote: parsed, access: access)
        if let problem = session.preflight() {
            throw GitError(operation: "fetching from \(url)", message: problem, code: -1)
        }
        if parsed.transport == .https, let problem = access.installCertificateAuthority() {
            throw GitError(operation: "fetching from \(url)", message: problem, code: -1)
        }
        var remote: OpaquePointer?
        try GitError.check("fetching from \(url)", git_remote_create_anonymous(&remote, repo, url))
        defer { git_remote_free(remote) }
        return try withExtendedLifetime(session) { () throws(GitError) -> T in
            var callbacks = session.callbacks()
            var proxy = git_proxy_options()
            git_proxy_options_init(&proxy, UInt32(GIT_PROXY_OPTIONS_VERSION))
            let code = git_remote_connect(remote, GIT_DIRECTION_FETCH, &callbacks, &proxy, nil)
            if code < 0 {
                throw GitError(operation: "fetching from \(url)", message: session.failure(GitError.last("", code: code)), code: code)
            }
            defer { git_remote_disconnect(remote) }
            access.onConnected(parsed)
            // Belt and braces: an ssh connection whose host key Slipway did not see is not used.
            if parsed.transport == .ssh && !session.hostKeyChecked {
                throw GitError(operation: "fetching from \(url)", message: "the server's host key was not checked; refusing to fetch", code: -1)
            }
            return try body(remote!, session)
        }
    }

    static func listedRefs(_ remote: OpaquePointer) throws(GitError) -> RemoteRefs {
        var heads: UnsafeMutablePointer<UnsafePointer<git_remote_head>?>?
        var count = 0
        try GitError.check("listing the remote's refs", git_remote_ls(&heads, &count, remote))
        var refs: RemoteRefs = [:]
        for index in 0..<count {
            guard let head = heads?[index] else { continue }
            let name = String(cString: head.pointee.name)
            if name.hasSuffix("^{}") { continue }
            var oid = head.pointee.oid
            refs[name] = hex(&oid)
        }
        return refs
    }

    /// Whether `name` is a source of one of `refspecs` (`+refs/heads/*:refs/heads/*`, `+refs/heads/main:refs/heads/main`).
    static func covered(_ name: String, by refspecs: [String]) -> Bool {
        refspecs.contains { spec in
            let source = spec.drop(while: { $0 == "+" }).prefix(while: { $0 != ":" })
            return source.hasSuffix("*") ? name.hasPrefix(source.dropLast()) : name == source
        }
    }

    /// The mirror's refs that `refspecs` write to (they map names to themselves).
    func localRefs(under refspecs: [String]) throws(GitError) -> RemoteRefs {
        guard let refs = LocalListing.coveredRefs(pointer, under: refspecs).map(LocalListing.ids) else { throw GitError.last("listing the mirror's refs", code: -1) }
        return refs
    }
}
