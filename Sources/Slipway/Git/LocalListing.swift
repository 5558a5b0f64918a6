import CGit2
import Foundation
import SlipwayCore

/// Asking a source on a local path for its refs by reading them: the repository opened with
/// libgit2's own checks (a repository another account owns is refused, as in a fetch), its refs
/// listed and resolved to ids, and nothing else. libgit2's local transport answers the same
/// question with a transport and a second open of the repository, and peels every tag it lists
/// (a pack index opened and an object read per ref), which made listing 20 unchanged local
/// sources the largest part of a pass with nothing to do. `LocalFetch` takes "nothing moved"
/// from here, and copies what a moved tip needs; anything else (an error, a large push) goes
/// the ordinary way, through libgit2's transport, which also says what went wrong.
enum LocalListing {
    /// The path of a local source (`/…` or `file:///…`); nil for any other URL.
    static func path(of url: String) -> String? {
        if url.hasPrefix("file://") { return String(url.dropFirst(7)) }
        return url.hasPrefix("/") ? url : nil
    }

    /// Runs `body` with the repository at `path` opened with libgit2's own checks (a repository
    /// another account owns is refused, as in a fetch); nil when it cannot be opened.
    static func withRepository<T>(at path: String, _ body: (OpaquePointer?) -> T) -> T? {
        var handle: OpaquePointer?
        guard git_repository_open_ext(&handle, path, UInt32(GIT_REPOSITORY_OPEN_NO_SEARCH.rawValue), nil) == 0 else {
            git_error_clear()
            return nil
        }
        defer { git_repository_free(handle) }
        return body(handle)
    }

    /// Refs as a listing names them: ref name → object id (hex).
    static func ids(_ covered: [(name: String, oid: git_oid)]) -> RemoteRefs {
        var refs: RemoteRefs = [:]
        for (name, oid) in covered {
            var oid = oid
            refs[name] = GitRepository.hex(&oid)
        }
        return refs
    }

    /// The refs of the open repository that `refspecs` cover, each resolved to its id (a ref
    /// that does not resolve is left out, as the transport leaves it out); nil when they
    /// cannot be listed.
    static func coveredRefs(_ handle: OpaquePointer?, under refspecs: [String]) -> [(name: String, oid: git_oid)]? {
        var names = git_strarray()
        guard git_reference_list(&names, handle) == 0 else { return nil }
        defer { git_strarray_dispose(&names) }
        var refs: [(name: String, oid: git_oid)] = []
        for index in 0..<names.count {
            guard let raw = names.strings[index] else { continue }
            let name = String(cString: raw)
            guard GitRepository.covered(name, by: refspecs) else { continue }
            var oid = git_oid()
            guard git_reference_name_to_id(&oid, handle, name) == 0 else { continue }
            refs.append((name, oid))
        }
        return refs
    }
}
