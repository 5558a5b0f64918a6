/// What this host's agent.yaml allows a manifest, beyond what the manifest alone can say (it may
/// be valid on another host): a local `source.repo` only under `git.local_roots`, and a
/// `backend.listen` port below 1024 only with `accounts.allow_privileged_ports: true`. Refusals
/// are located at the manifest's own line, like any other manifest problem.
///
/// The agent reads source repos and binds listeners as root: without this a manifest pusher
/// could publish a root-only repository into a release, or take over a port of a root service.
public enum HostPolicy {
    /// `resolve` is the filesystem's answer for a local path (symlinks followed, `realpath`), nil
    /// when it cannot be resolved; the check is made on resolved paths, so a link inside a root
    /// to a repo outside it is refused, and a root whose prefix is a link (`/srv -> /data/srv`) works.
    public static func diagnostics(for entry: ManifestSet.Entry, config: AgentConfig, resolve: (String) -> String?) -> Diagnostics? {
        var items: [Diagnostic] = []
        let manifest = entry.manifest
        func mark(_ field: String) -> SourceMark { entry.marks[field] ?? SourceMark(line: 1, column: 1) }

        if let problem = localRootProblem(manifest.source.repo, roots: config.localRepoRoots, resolve: resolve) {
            items.append(Diagnostic(file: entry.path, at: mark("source.repo"), problem,
                                    hint: "move the repository under one of them, or add its directory to git.local_roots in agent.yaml"))
        }
        if case .tcp(_, let port)? = manifest.backend?.workers?.listen, port > 0, port < 1024, !config.accounts.allowPrivilegedPorts {
            let listen = manifest.backend?.workers?.listen.map { "\($0)" } ?? ""
            items.append(Diagnostic(file: entry.path, at: mark("backend.listen"),
                                    "backend.listen '\(listen)' is a privileged port (below 1024), which this host does not allow",
                                    hint: "listen on a port from 1024 up and let nginx serve 80/443, or set accounts.allow_privileged_ports: true in agent.yaml"))
        }
        return items.isEmpty ? nil : Diagnostics(items)
    }

    /// Why a local `repo` may not be read here; nil for a remote URL or a repo under a root.
    static func localRootProblem(_ repo: String, roots: LocalRepoRoots, resolve: (String) -> String?) -> String? {
        guard let path = LocalRepoRoots.localPath(of: repo) else { return nil }
        let listed = roots.roots.isEmpty ? "none" : roots.roots.joined(separator: ", ")
        guard !path.split(separator: "/").contains(".."), !path.split(separator: "/").contains(".") else {
            return "source.repo '\(repo)' has '.' or '..' in it; local repos are named by a plain absolute path under git.local_roots (\(listed))"
        }
        let resolved = resolve(path) ?? path
        let resolvedRoots = LocalRepoRoots(roots: roots.roots.map { resolve($0) ?? $0 })
        guard resolvedRoots.contains(resolved) else {
            let via = resolved == path ? "" : " (it resolves to \(resolved))"
            return "source.repo '\(repo)'\(via) is outside this host's git.local_roots (\(listed))"
        }
        return nil
    }
}
