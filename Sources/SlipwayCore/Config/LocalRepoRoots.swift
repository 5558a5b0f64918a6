/// agent.yaml `git.local_roots`: the only directories a local `source.repo` path (or
/// `file://` URL) may lie under. The agent reads source repos as root; without this, a manifest
/// could publish any repository on the host (a root-only one included) into a release.
///
///     git:
///       local_roots: [/srv/git]
public struct LocalRepoRoots: Sendable, Equatable {
    public var roots: [String]

    public static let `default` = LocalRepoRoots(roots: ["/srv/git"])

    public init(roots: [String]) {
        self.roots = roots.map { $0.count > 1 && $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
    }

    /// The local path `repo` names (an absolute path or a file:// URL); nil for a remote URL.
    public static func localPath(of repo: String) -> String? {
        if repo.hasPrefix("/") { return repo }
        if repo.hasPrefix("file://") { return String(repo.dropFirst("file://".count)) }
        return nil
    }

    /// Whether `path` (absolute, already resolved, no '..') lies under one of the roots.
    public func contains(_ path: String) -> Bool {
        roots.contains { root in root == "/" || path == root || path.hasPrefix(root + "/") }
    }
}
