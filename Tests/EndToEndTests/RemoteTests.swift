import Foundation
import Testing

/// A fixture whose manifests and source are served by bare repos in it, over a real server.
extension Fixture {
    var bareSource: String { root + "/srv/src.git" }
    var bareManifests: String { root + "/srv/manifests.git" }
    var sshDir: String { root + "/ssh" }
    var identity: String { sshDir + "/id_ed25519" }
    var knownHosts: String { sshDir + "/known_hosts" }

    /// Publishes the work repos to bare ones (clone the first time, push after).
    func publish(to base: String? = nil) throws {
        for (work, bare) in [(sourceRepo, base.map { $0 + "/src.git" } ?? bareSource), (manifestsRepo, base.map { $0 + "/manifests.git" } ?? bareManifests)] {
            if FileManager.default.fileExists(atPath: bare + "/HEAD") {
                try git(["push", "-q", "--force", bare, "main"], in: work)
            } else {
                try FileManager.default.createDirectory(atPath: (bare as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try git(["clone", "-q", "--bare", work, bare])
            }
        }
    }

    /// Rewrites agent.yaml to follow `manifestsURL` with `git` as its `git:` section.
    func configureRemote(manifestsURL: String, git: String, extra: String = "") throws {
        try write("""
        host: web-1
        manifests:
          repo: \(Fixture.yamlQuoted(manifestsURL))
          branch: main
          path: manifests
        apps_root: \(appsRoot)
        state_dir: \(stateDir)
        poll_interval: 1h
        listen: 127.0.0.1:0
        apps_user: \(Fixture.appsUser)
        \(git)
        \(extra)
        """, to: configPath)
    }

    func sshGitSection(identity: String? = nil) -> String {
        """
        git:
          ssh:
            identity: \(identity ?? self.identity)
            known_hosts: \(knownHosts)
        """
    }

    /// A manifest that publishes the source tree, from `repo` at `ref`.
    func plainManifest(app: String, repo: String, ref: String = "main") -> String {
        "app: \(app)\nsource: {repo: \(Fixture.yamlQuoted(repo)), ref: \(ref)}\nbackend: {dir: .}\n"
    }

    var metricsText: String { read(stateDir + "/metrics.prom") ?? "" }

    /// Every file under the state dir, concatenated (for secret greps).
    func stateText() -> String {
        var text = ""
        for entry in FileManager.default.enumerator(atPath: stateDir)?.compactMap({ $0 as? String }) ?? [] {
            let path = stateDir + "/" + entry
            guard !entry.contains("mirrors/"), let data = FileManager.default.contents(atPath: path) else { continue }
            text += String(decoding: data, as: UTF8.self)
        }
        return text
    }
}

extension Fixture {
    /// Runs the agent on the current agent.yaml (with `api.token_file` added) until its first pass
    /// ended, and returns everything it serves and writes: `/v1/status` over the unix socket and
    /// over TCP with the bearer token, `/metrics` and `/healthz` over TCP, its log and the state
    /// dir. For greps that no secret leaks through any of them.
    func everythingTheAgentServes() throws -> String {
        let tokenFile = root + "/api.token"
        let token = "api-" + UUID().uuidString
        try write(token + "\n", to: tokenFile)
        let config = try #require(read(configPath))
        try write(config + "\napi:\n  token_file: \(tokenFile)\n", to: configPath)
        defer { try? write(config, to: configPath) }
        unlink(stateDir + "/http.addr")
        let log = root + "/agent-served.log"
        let agent = try AgentProcess(config: configPath, log: log)
        defer { agent.stop() }
        let socket = stateDir + "/agent.sock"
        func curl(_ arguments: [String]) -> (status: Int, body: String) {
            let result = (try? Fixture.run("/usr/bin/curl", ["-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}"] + arguments, timeout: 20))
            var lines = (result?.stdout ?? "").split(separator: "\n", omittingEmptySubsequences: false)
            let code = Int(lines.popLast() ?? "") ?? 0
            return (code, lines.joined(separator: "\n"))
        }
        var base = ""
        // Up, and its first pass over (counted in /metrics).
        let up = waitUntil(seconds: 60) {
            guard let addr = read(stateDir + "/http.addr")?.trimmingCharacters(in: .whitespacesAndNewlines), !addr.isEmpty else { return false }
            base = "http://\(addr)"
            return curl([base + "/metrics"]).body.contains("slipway_passes_total 1")
        }
        #expect(up, "the agent did not finish a pass: \(read(log) ?? "")")
        var served: [String] = []
        let viaSocket = curl(["--unix-socket", socket, "http://localhost/v1/status"])
        let viaTCP = curl(["-H", "Authorization: Bearer \(token)", base + "/v1/status"])
        let metrics = curl([base + "/metrics"])
        #expect(viaSocket.status == 200 && viaTCP.status == 200 && metrics.status == 200, "\(viaTCP) \(metrics)")
        #expect(viaTCP.body.contains("\"apps\""), "\(viaTCP.body)")
        #expect(metrics.body.contains("slipway_"), "\(metrics.body)")
        served += [viaSocket.body, viaTCP.body, metrics.body, curl([base + "/healthz"]).body]
        agent.stop()
        return (served + [read(log) ?? "", stateText(), metricsText]).joined(separator: "\n")
    }
}

/// Private key material: the base64 body of an OpenSSH private key file.
func privateKeyBody(_ path: String) throws -> [String] {
    try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").filter { !$0.hasPrefix("-----") }.map(String.init)
}

@Suite(.serialized, .endToEnd)
struct SSHRemoteTests {
    /// Manifests and two apps sharing one source repo, over ssh:// from a real sshd; one connection
    /// per remote per pass, a download only when a tip moved; a hashed known_hosts entry works.
    @Test func deploysOverSSHWithOneConnectionPerRemote() throws {
        let f = try Fixture(name: "ssh")
        let server = try TestSSHServer(root: f.root)
        try TestSSHServer.makeKey(f.identity)
        try server.authorize(f.identity + ".pub")
        try server.start()
        try f.write(try server.keyscan(), to: f.knownHosts)

        try f.commitSource(["index.html": "v1"])
        try f.commitManifest("a.yaml", f.plainManifest(app: "alpha", repo: server.url(f.bareSource)))
        try f.commitManifest("b.yaml", f.plainManifest(app: "beta", repo: server.url(f.bareSource)))
        try f.publish()
        try f.configureRemote(manifestsURL: server.url(f.bareManifests), git: f.sshGitSection())

        let first = try f.pass()
        #expect(first.status == 0, "\(first.output)")
        #expect(f.currentFile("backend/index.html", app: "alpha") == "v1")
        #expect(f.currentFile("backend/index.html", app: "beta") == "v1")
        // The manifests and the one source both apps share: two connections, two downloads.
        #expect(server.acceptedLogins == 2)
        let endpoint = "127.0.0.1:\(server.port)"
        #expect(f.metricsText.contains("slipway_git_connections_total{remote=\"\(endpoint)\"} 2"), "\(f.metricsText)")
        #expect(f.metricsText.contains("slipway_git_fetches_total{remote=\"\(endpoint)\"} 2"))

        // Nothing moved: each remote is listed once, nothing is downloaded.
        #expect(try f.pass().status == 0)
        #expect(server.acceptedLogins == 4)
        #expect(f.metricsText.contains("slipway_git_connections_total{remote=\"\(endpoint)\"} 2"))
        #expect(!f.metricsText.contains("slipway_git_fetches_total"))

        // known_hosts hashed by ssh-keygen -H still matches, for the port in the URL.
        try TestSSHServer.must("/usr/bin/ssh-keygen", ["-H", "-f", f.knownHosts])
        #expect(f.read(f.knownHosts)?.hasPrefix("|1|") == true)
        try f.commitSource(["index.html": "v2"])
        try f.publish()
        let second = try f.pass()
        #expect(second.status == 0, "\(second.output)")
        #expect(f.currentFile("backend/index.html", app: "alpha") == "v2")
        // Only the source moved: still one connection per remote (the source's listing and its
        // download share one), one download, and the two apps share one mirror.
        #expect(server.acceptedLogins == 6, "\(server.acceptedLogins) logins in sshd's log after three passes")
        #expect(f.metricsText.contains("slipway_git_fetches_total{remote=\"\(endpoint)\"} 1"), "\(f.metricsText)")
        #expect(f.metricsText.contains("slipway_git_connections_total{remote=\"\(endpoint)\"} 2"))
        #expect((try? FileManager.default.contentsOfDirectory(atPath: f.stateDir + "/mirrors/sources"))?.filter { $0.hasSuffix(".git") }.count == 1)

        // `slipway check` reaches both remotes; `slipway key` prints the deploy key.
        let check = try f.slipway(["check"])
        #expect(check.status == 0, "\(check.output)")
        #expect(check.stdout.contains("ok   manifests: \(server.url(f.bareManifests)) main at"))
        #expect(check.stdout.contains("ok   source of alpha: \(server.url(f.bareSource)) reached"))
        let key = try f.slipway(["key"])
        let pub = try String(contentsOfFile: f.identity + ".pub", encoding: .utf8).split(separator: " ").prefix(2).joined(separator: " ")
        #expect(key.stdout.hasPrefix(pub + " slipway@web-1\n"), "\(key.output)")
        let fingerprint = try Fixture.run("/usr/bin/ssh-keygen", ["-lf", f.identity + ".pub"], timeout: 10).stdout.split(separator: " ")[1]
        #expect(key.stdout.contains(String(fingerprint)))

        // Secrets: a build that dumps its environment, then the running agent's log, state, status
        // (socket and TCP) and metrics: no line of the private key anywhere.
        try f.commitSource(["index.html": "v3", "build.sh": "env > \(f.scratch)/build-env\n"])
        try f.commitManifest("a.yaml", f.plainManifest(app: "alpha", repo: server.url(f.bareSource))
            .replacingOccurrences(of: "backend: {dir: .}", with: "backend: {dir: ., build: sh build.sh}"))
        try f.publish()
        let beforeThird = server.acceptedLogins
        let third = try f.pass()
        #expect(third.status == 0, "\(third.output)")
        #expect(server.acceptedLogins - beforeThird == 2, "both remotes moved: still one connection each")
        let buildEnv = try #require(f.read(f.scratch + "/build-env"))
        let served = try f.everythingTheAgentServes()
        let everything = [first.output, second.output, third.output, check.output, key.output, buildEnv, served].joined(separator: "\n")
        let body = try privateKeyBody(f.identity)
        #expect(body.count >= 3)
        for line in body {
            #expect(!everything.contains(line), "a line of the private key leaked")
        }
    }

    /// Unknown host, a key the server does not know, an RSA identity, a changed host key: each
    /// refused with what to do, nothing fetched, the current release kept.
    @Test func refusesUnknownHostsWrongKeysRSAAndChangedHostKeys() throws {
        let f = try Fixture(name: "sshrefuse")
        let server = try TestSSHServer(root: f.root)
        try TestSSHServer.makeKey(f.identity)
        try server.authorize(f.identity + ".pub")
        try server.start()
        let endpoint = "127.0.0.1:\(server.port)"

        try f.commitSource(["index.html": "v1"])
        try f.commitManifest("a.yaml", f.plainManifest(app: "alpha", repo: server.url(f.bareSource)))
        try f.publish()
        try f.configureRemote(manifestsURL: server.url(f.bareManifests), git: f.sshGitSection())

        // Not in known_hosts (the file does not even exist): refused with the key and the keyscan line.
        let unknown = try f.pass()
        #expect(unknown.status != 0)
        let fingerprint = try Fixture.run("/usr/bin/ssh-keygen", ["-lf", server.hostKey + ".pub"], timeout: 10).stdout.split(separator: " ")[1]
        #expect(unknown.output.contains("host \(endpoint) is not in \(f.knownHosts) (it offered ssh-ed25519 \(fingerprint))"), "\(unknown.output)")
        #expect(unknown.output.contains("ssh-keyscan -p \(server.port) 127.0.0.1 >> \(f.knownHosts)"))
        #expect(server.acceptedLogins == 0)
        let check = try f.slipway(["check"])
        #expect(check.status == 1)
        #expect(check.stdout.contains("FAIL manifests: \(server.url(f.bareManifests)): host \(endpoint) is not in"), "\(check.output)")

        try f.write(try server.keyscan(), to: f.knownHosts)
        #expect(try f.pass().status == 0)
        let good = try #require(f.current("alpha"))

        // A second key the server does not know.
        try TestSSHServer.makeKey(f.sshDir + "/other_ed25519")
        try f.configureRemote(manifestsURL: server.url(f.bareManifests), git: f.sshGitSection(identity: f.sshDir + "/other_ed25519"))
        let wrongKey = try f.pass()
        #expect(wrongKey.output.contains("\(endpoint) refused the key \(f.sshDir)/other_ed25519 (git.ssh.identity) for '\(server.account)'"), "\(wrongKey.output)")

        // RSA: refused before any connection is made.
        try TestSSHServer.makeKey(f.sshDir + "/id_rsa", type: "rsa")
        try server.authorize(f.sshDir + "/id_rsa.pub")
        let connections = server.connectionsSeen
        try f.configureRemote(manifestsURL: server.url(f.bareManifests), git: f.sshGitSection(identity: f.sshDir + "/id_rsa"))
        let rsa = try f.pass()
        #expect(rsa.output.contains("is an RSA key") && rsa.output.contains("ed25519 or ecdsa"), "\(rsa.output)")
        #expect(server.connectionsSeen == connections)

        // The server comes back with another host key: CHANGED, counted, never learned; the app keeps its release.
        try f.configureRemote(manifestsURL: server.url(f.bareManifests), git: f.sshGitSection())
        server.stop()
        try server.newHostKey()
        try server.start()
        try f.commitSource(["index.html": "v2"])
        try f.publish()
        let knownBefore = f.read(f.knownHosts)
        let changed = try f.pass()
        #expect(changed.output.contains("host key for \(endpoint) CHANGED"), "\(changed.output)")
        // Both connections of the pass (manifests, then the source) met the changed key.
        #expect(f.metricsText.contains("slipway_git_host_key_changed_total{remote=\"\(endpoint)\"} 2"), "\(f.metricsText)")
        #expect(f.read(f.knownHosts) == knownBefore)
        #expect(f.current("alpha") == good)
        #expect(f.currentFile("backend/index.html", app: "alpha") == "v1")
        // Status names the remote and why, in one line.
        let status = try f.slipway(["status"])
        let line = status.stdout.split(separator: "\n").first { $0.contains("manifests not fetched") }
        #expect(line?.contains("host key for \(endpoint) CHANGED") == true, "\(status.output)")
    }

    /// `user@host:path` (scp-like, port 22) for the manifests and the source.
    @Test func scpLikeURLs() throws {
        let f = try Fixture(name: "sshscp")
        let address = "127.\(Int.random(in: 1...250)).\(Int.random(in: 1...250)).\(Int.random(in: 2...250))"
        let server = try TestSSHServer(root: f.root, address: address, port: 22)
        try TestSSHServer.makeKey(f.identity)
        try server.authorize(f.identity + ".pub")
        try server.start()
        let scan = try Fixture.run("/usr/bin/ssh-keyscan", ["-t", "ed25519", address], timeout: 20).stdout
        #expect(scan.hasPrefix(address + " "))
        try f.write(scan, to: f.knownHosts)
        try f.commitSource(["index.html": "scp"])
        try f.commitManifest("a.yaml", f.plainManifest(app: "alpha", repo: "\(server.account)@\(address):\(f.bareSource)"))
        try f.publish()
        try f.configureRemote(manifestsURL: "\(server.account)@\(address):\(f.bareManifests)", git: f.sshGitSection())
        let result = try f.pass()
        #expect(result.status == 0, "\(result.output)")
        #expect(f.currentFile("backend/index.html", app: "alpha") == "scp")
    }
}

@Suite(.serialized, .endToEnd)
struct HTTPSRemoteTests {
    @Test func deploysWithATokenAndRefusesWrongTokensAndUnknownCAs() throws {
        let f = try Fixture(name: "https")
        let server = try TestHTTPSGitServer(root: f.root)
        try server.start()
        try f.commitSource(["index.html": "over https"])
        try f.commitManifest("a.yaml", f.plainManifest(app: "alpha", repo: server.url("src.git")))
        try f.publish(to: server.projectRoot)
        let tokenFile = f.root + "/git-token"
        try f.write(server.token + "\n", to: tokenFile)
        let section = { (ca: Bool) in
            """
            git:
              \(ca ? "ca_file: \(server.caCert)" : "")
              credentials:
                - url: https://127.0.0.1:\(server.nginx.port)/
                  username: \(server.username)
                  password_file: \(tokenFile)
            """
        }
        try f.configureRemote(manifestsURL: server.url("manifests.git"), git: section(true))
        let good = try f.pass()
        #expect(good.status == 0, "\(good.output)")
        #expect(f.currentFile("backend/index.html", app: "alpha") == "over https")
        let check = try f.slipway(["check"])
        #expect(check.status == 0, "\(check.output)")

        // A wrong token: the URL, the entry and the status, never the secret.
        let wrong = "wrong-" + UUID().uuidString
        try f.write(wrong + "\n", to: tokenFile)
        let refused = try f.pass()
        #expect(refused.output.contains("\(server.url("manifests.git")) answered HTTP 401 to the login of git.credentials[0] (https://127.0.0.1:\(server.nginx.port)/)"),
                "\(refused.output)")
        #expect(!refused.output.contains(wrong) && !refused.output.contains(server.token))

        // Without ca_file the test CA is unknown: the host and what failed.
        try f.write(server.token + "\n", to: tokenFile)
        try f.configureRemote(manifestsURL: server.url("manifests.git"), git: section(false))
        let noCA = try f.pass()
        #expect(noCA.output.contains("the TLS certificate of 127.0.0.1 was refused"), "\(noCA.output)")
        #expect(noCA.output.contains("not correctly signed by the trusted CA") && noCA.output.contains("git.ca_file"))

        // Secrets: nowhere in logs, state, status, metrics or the build environment.
        try f.configureRemote(manifestsURL: server.url("manifests.git"), git: section(true))
        try f.commitSource(["index.html": "v2", "build.sh": "env > \(f.scratch)/build-env\n"])
        try f.commitManifest("a.yaml", f.plainManifest(app: "alpha", repo: server.url("src.git")).replacingOccurrences(of: "backend: {dir: .}", with: "backend: {dir: ., build: sh build.sh}"))
        try f.publish(to: server.projectRoot)
        let last = try f.pass()
        #expect(last.status == 0, "\(last.output)")
        let status = try f.slipway(["status", "--json"])
        let served = try f.everythingTheAgentServes()
        let everything = [good.output, refused.output, noCA.output, last.output, check.output, status.output, served,
                          f.read(f.scratch + "/build-env") ?? "missing build env"].joined(separator: "\n")
        #expect(f.read(f.scratch + "/build-env") != nil)
        #expect(!everything.contains(server.token))
        #expect(!everything.contains(wrong))
    }

    @Test func credentialsInAURLAreRefusedByValidate() throws {
        let f = try Fixture(name: "urlcreds")
        let secret = "t0k-" + UUID().uuidString
        try f.write(f.plainManifest(app: "alpha", repo: "https://deploy:\(secret)@git.example.com/a.git"), to: f.root + "/m/a.yaml")
        let result = try f.slipway(["validate", f.root + "/m"], config: false)
        #expect(result.status == 1)
        #expect(result.stderr.contains("\(f.root)/m/a.yaml:2:"), "\(result.output)")
        #expect(result.stderr.contains("git.credentials"))
        #expect(!result.output.contains(secret))
        // And in agent.yaml: the config does not load.
        try f.configureRemote(manifestsURL: "https://deploy:\(secret)@git.example.com/m.git", git: "")
        let status = try f.slipway(["status"])
        #expect(status.status == 2 && status.stderr.contains("git.credentials") && !status.output.contains(secret), "\(status.output)")
    }
}
