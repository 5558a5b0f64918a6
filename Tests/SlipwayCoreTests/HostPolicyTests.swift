import Testing
@testable import SlipwayCore

/// What agent.yaml lets a manifest do on this host: local repos under git.local_roots, ports
/// below 1024 only with accounts.allow_privileged_ports.
@Suite struct HostPolicyTests {
    func entry(repo: String, listen: String? = nil) throws -> ManifestSet.Entry {
        var text = "app: web\nsource:\n  repo: \(repo)\n  ref: main\n"
        text += listen.map { "backend:\n  command: ./serve\n  listen: \($0)\n" } ?? "backend: {dir: .}\n"
        let set = ManifestSet(files: [.init(path: "manifests/web.yaml", text: text)])
        return try #require(set.valid.values.first, "\(set.allDiagnostics)")
    }

    func config(roots: [String] = ["/srv/git"], privilegedPorts: Bool = false) -> AgentConfig {
        var config = AgentConfig(host: "web-1", manifests: .init(repo: "/etc/slipway/manifests.git"))
        config.localRepoRoots = LocalRepoRoots(roots: roots)
        config.accounts.allowPrivilegedPorts = privilegedPorts
        return config
    }

    /// Paths resolve to themselves, except the links named here.
    func resolver(_ links: [String: String] = [:]) -> (String) -> String? {
        { path in links.first { path == $0.key || path.hasPrefix($0.key + "/") }.map { $0.value + path.dropFirst($0.key.count) } ?? path }
    }

    @Test func aLocalRepoOutsideTheRootsIsRefusedAtItsLine() throws {
        let problems = HostPolicy.diagnostics(for: try entry(repo: "/root/secret.git"), config: config(), resolve: resolver())
        #expect(problems?.description == "manifests/web.yaml:3:9: source.repo '/root/secret.git' is outside this host's git.local_roots (/srv/git)"
                + " — move the repository under one of them, or add its directory to git.local_roots in agent.yaml")
        #expect(HostPolicy.diagnostics(for: try entry(repo: "file:///root/secret.git"), config: config(), resolve: resolver()) != nil)
        #expect(HostPolicy.diagnostics(for: try entry(repo: "/srv/gitx/a.git"), config: config(), resolve: resolver()) != nil)
        // (The manifest decoder already refuses '..'; the policy does too, whoever calls it.)
        #expect(HostPolicy.localRootProblem("/srv/git/../../root/s.git", roots: .default, resolve: resolver())?.contains("'..'") == true)
    }

    @Test func reposUnderARootAndRemotesAreAccepted() throws {
        for repo in ["/srv/git/a.git", "file:///srv/git/team/b.git", "https://git.example.com/a.git", "git@git.example.com:a.git"] {
            #expect(HostPolicy.diagnostics(for: try entry(repo: repo), config: config(), resolve: resolver()) == nil, "\(repo)")
        }
        #expect(HostPolicy.diagnostics(for: try entry(repo: "/home/git/a.git"), config: config(roots: ["/srv/git", "/home/git"]), resolve: resolver()) == nil)
    }

    @Test func pathsAreComparedResolved() throws {
        // A link inside a root to a repo elsewhere is outside; a root behind a link is fine.
        let outward = resolver(["/srv/git/evil.git": "/root/secret.git"])
        let problem = HostPolicy.diagnostics(for: try entry(repo: "/srv/git/evil.git"), config: config(), resolve: outward)
        #expect(problem?.description.contains("(it resolves to /root/secret.git) is outside") == true)
        let moved = resolver(["/srv": "/data/srv"])
        #expect(HostPolicy.diagnostics(for: try entry(repo: "/srv/git/a.git"), config: config(), resolve: moved) == nil)
    }

    @Test func privilegedPortsNeedTheFlag() throws {
        let low = try entry(repo: "/srv/git/a.git", listen: "127.0.0.1:80")
        #expect(HostPolicy.diagnostics(for: low, config: config(), resolve: resolver())?.description
                == "manifests/web.yaml:7:11: backend.listen '127.0.0.1:80' is a privileged port (below 1024), which this host does not allow"
                + " — listen on a port from 1024 up and let nginx serve 80/443, or set accounts.allow_privileged_ports: true in agent.yaml")
        #expect(HostPolicy.diagnostics(for: low, config: config(privilegedPorts: true), resolve: resolver()) == nil)
        #expect(HostPolicy.diagnostics(for: try entry(repo: "/srv/git/a.git", listen: "127.0.0.1:1024"), config: config(), resolve: resolver()) == nil)
        #expect(HostPolicy.diagnostics(for: try entry(repo: "/srv/git/a.git", listen: "unix:run/web.sock"), config: config(), resolve: resolver()) == nil)
    }

    @Test func agentYAMLSetsTheRootsAndTheFlag() throws {
        let text = "manifests: {repo: /m.git}\ngit: {local_roots: [/srv/git, /home/git/]}\naccounts: {allow_privileged_ports: true}\n"
        let config = try AgentConfig.decode(text, file: "agent.yaml", hostname: "h").get()
        #expect(config.localRepoRoots.roots == ["/srv/git", "/home/git"])
        #expect(config.accounts.allowPrivilegedPorts)
        let defaults = try AgentConfig.decode("manifests: {repo: /m.git}\n", file: "agent.yaml", hostname: "h").get()
        #expect(defaults.localRepoRoots == .default && !defaults.accounts.allowPrivilegedPorts)
    }
}
