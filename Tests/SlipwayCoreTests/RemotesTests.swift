import Testing
import Foundation
@testable import SlipwayCore

@Suite struct RemoteURLTests {
    @Test func sshSpellings() throws {
        let full = try #require(RemoteURL("ssh://git@git.internal:2222/ops/manifests.git"))
        #expect(full.transport == .ssh && full.host == "git.internal" && full.port == 2222 && full.user == "git")
        let scp = try #require(RemoteURL("git@git.internal:ops/manifests.git"))
        #expect(scp.transport == .ssh && scp.host == "git.internal" && scp.port == 22 && scp.user == "git")
        #expect(scp.canonical == "ssh://git@git.internal:22/ops/manifests.git")
        #expect(RemoteURL("ssh://git@git.internal/ops/x.git")?.canonical == "ssh://git@git.internal:22/ops/x.git")
        #expect(RemoteURL("ssh://git@[::1]:2200/x.git")?.host == "::1")
        #expect(RemoteURL("ssh://git@[::1]:2200/x.git")?.canonical == "ssh://git@[::1]:2200/x.git")
        #expect(RemoteURL("/srv/git/app.git")?.transport == .local)
        #expect(RemoteURL("https://git.example.com/a.git")?.port == 443)
        #expect(RemoteURL("ssh://git@host:99999/x") == nil)
        #expect(RemoteURL("ssh:///x") == nil)
    }

    @Test func secretsInURLs() {
        #expect(RemoteURL("https://deploy:token@git.example.com/a.git")?.carriesSecret == true)
        #expect(RemoteURL("https://ghp_token@git.example.com/a.git")?.carriesSecret == true)
        #expect(RemoteURL("ssh://git:pw@host/a.git")?.carriesSecret == true)
        #expect(RemoteURL("ssh://git@host/a.git")?.carriesSecret == false)
        #expect(RemoteURL("git@host:a.git")?.carriesSecret == false)
        #expect(RemoteURL("https://git.example.com/a.git")?.carriesSecret == false)
    }

    @Test func manifestWithTokenInURLIsRefusedAndTheTokenNotRepeated() throws {
        let text = "app: web\nsource: {repo: 'https://deploy:s3cr3t-t0ken@git.example.com/web.git', ref: main}\nbackend: {dir: .}\n"
        guard case .failure(let diagnostics) = ManifestDecoder.decode(text, file: "web.yaml") else {
            Issue.record("accepted a URL with a token")
            return
        }
        let message = diagnostics.description
        #expect(message.contains("web.yaml:2:"))
        #expect(message.contains("git.credentials"))
        #expect(!message.contains("s3cr3t-t0ken"))
    }

    @Test func agentConfigWithTokenInURLIsRefused() {
        let text = "manifests: {repo: 'https://x:tok3n@git.example.com/m.git'}\n"
        guard case .failure(let diagnostics) = AgentConfig.decode(text, file: "agent.yaml", hostname: "h") else {
            Issue.record("accepted a URL with a token")
            return
        }
        #expect(diagnostics.description.contains("agent.yaml:1:") && diagnostics.description.contains("git.credentials"))
        #expect(!diagnostics.description.contains("tok3n"))
    }
}

@Suite struct GitConfigTests {
    static let yaml = """
        manifests: {repo: 'ssh://git@git.internal:2222/ops/manifests.git'}
        git:
          ssh:
            identity: /etc/slipway/ssh/id_ed25519
            known_hosts: /etc/slipway/ssh/known_hosts
          ca_file: /etc/slipway/git-ca.pem
          credentials:
            - url: https://git.example.com/
              username: deploy
              password_file: /etc/slipway/git-token
            - url: https://git.example.com/team/
              username: team
              password_file: /etc/slipway/team-token
            - url: ssh://git@git.internal:2222/
              identity: /etc/slipway/ssh/internal_ed25519

        """

    @Test func decodesAndPicksTheLongestPrefix() throws {
        let git = try AgentConfig.decode(Self.yaml, file: "agent.yaml", hostname: "h").get().git
        #expect(git.caFile == "/etc/slipway/git-ca.pem")
        #expect(git.credentials.count == 3)
        #expect(git.credential(for: RemoteURL("https://git.example.com/team/app.git")!)?.username == "team")
        #expect(git.credential(for: RemoteURL("https://git.example.com/other/app.git")!)?.username == "deploy")
        #expect(git.credential(for: RemoteURL("https://git.example.com.evil.test/a.git")!) == nil)
        // Both ssh spellings of the same server find the entry.
        #expect(git.identity(for: RemoteURL("ssh://git@git.internal:2222/ops/a.git")!) == "/etc/slipway/ssh/internal_ed25519")
        #expect(git.identity(for: RemoteURL("ssh://git@git.internal/ops/a.git")!) == GitConfig.defaultIdentity)
        #expect(git.identity(for: RemoteURL("git@git.internal:ops/a.git")!) == GitConfig.defaultIdentity)
        #expect(git.credential(for: RemoteURL("https://git.example.com/team/app.git")!)?.label == "git.credentials[1] (https://git.example.com/team/)")
    }

    @Test func defaultsWithoutAGitSection() throws {
        let git = try AgentConfig.decode("manifests: {repo: /m.git}\n", file: "a.yaml", hostname: "h").get().git
        #expect(git == GitConfig())
        #expect(git.sshIdentity == "/etc/slipway/ssh/id_ed25519" && git.knownHosts == "/etc/slipway/ssh/known_hosts")
    }

    @Test(arguments: [
        ("git: {credentials: [{url: https://h/, username: u}]}", "needs both 'username' and 'password_file'"),
        ("git: {credentials: [{url: https://h/, username: u, password_file: rel/token}]}", "absolute path"),
        ("git: {credentials: [{url: ssh://git@h/, password_file: /t}]}", "not a password"),
        ("git: {credentials: [{url: ftp://h/, username: u}]}", "neither an https:// nor an ssh://"),
        ("git: {credentials: [{url: 'https://u:p@h/', username: u, password_file: /t}]}", "carries credentials"),
        ("git: {ssh: {identity: id_ed25519}}", "git.ssh.identity must be an absolute path"),
        ("git: {sssh: {}}", "sssh"),
    ])
    func refuses(_ snippet: String, _ expected: String) {
        let text = "manifests: {repo: /m.git}\n" + snippet + "\n"
        guard case .failure(let diagnostics) = AgentConfig.decode(text, file: "agent.yaml", hostname: "h") else {
            Issue.record("accepted \(snippet)")
            return
        }
        #expect(diagnostics.description.contains("agent.yaml:2:"), "\(diagnostics)")
        #expect(diagnostics.description.contains(expected), "\(diagnostics)")
    }
}

@Suite struct KnownHostsTests {
    // Made with ssh-keygen (OpenSSH 9.2): the two plain lines, then the same hashed by `ssh-keygen -H`.
    static let key = SSHPublicKey(blob: Base64.decode("AAAAC3NzaC1lZDI1NTE5AAAAIFsbq2K+yIy1hXJJJJAp7boOl8gTNdoNJlWDIhJA/D6n")!)!
    static let other = SSHPublicKey(blob: Base64.decode("AAAAC3NzaC1lZDI1NTE5AAAAILbks2/z1l+g/4W7CC/PBYmNNCrLkkSG4ttxlDxrJFdV")!)!
    static let plain = """
        [127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFsbq2K+yIy1hXJJJJAp7boOl8gTNdoNJlWDIhJA/D6n
        git.internal ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFsbq2K+yIy1hXJJJJAp7boOl8gTNdoNJlWDIhJA/D6n
        """
    static let hashed = """
        |1|LIP4N1c73vpJKZbGnyTJAJ+qCWs=|ek97BwG5jzmjO2yjwIleGZoMb98= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFsbq2K+yIy1hXJJJJAp7boOl8gTNdoNJlWDIhJA/D6n
        |1|6uFL7SJzIptztFCPvIRCcZChCSg=|2NRisOZ+KW6yNy5ed+nMMvR3m4w= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFsbq2K+yIy1hXJJJJAp7boOl8gTNdoNJlWDIhJA/D6n
        """

    @Test(arguments: [plain, hashed])
    func matchesHostAndPort(_ text: String) {
        let file = KnownHosts(text)
        #expect(file.unreadable.isEmpty)
        #expect(file.verdict(host: "127.0.0.1", port: 2222, key: Self.key) == .trusted(line: 1))
        #expect(file.verdict(host: "git.internal", port: 22, key: Self.key) == .trusted(line: 2))
        // The port is part of the name: the same host on another port is unknown.
        #expect(file.verdict(host: "127.0.0.1", port: 22, key: Self.key) == .unknown)
        #expect(file.verdict(host: "git.internal", port: 2222, key: Self.key) == .unknown)
        guard case .changed(let known) = file.verdict(host: "127.0.0.1", port: 2222, key: Self.other) else {
            Issue.record("a different key was not reported as changed")
            return
        }
        #expect(known == [.init(type: "ssh-ed25519", fingerprint: "SHA256:pq2TjHxaPWaWwObxF4njULPD4HAGMoRRWyZGwQ2SuLg", line: 1)])
    }

    @Test func revokedWildcardsAndNegation() {
        let text = """
            # comment
            @revoked * ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILbks2/z1l+g/4W7CC/PBYmNNCrLkkSG4ttxlDxrJFdV
            *.internal,!bad.internal ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFsbq2K+yIy1hXJJJJAp7boOl8gTNdoNJlWDIhJA/D6n
            not a line
            """
        let file = KnownHosts(text)
        #expect(file.unreadable == [4])
        #expect(file.verdict(host: "git.internal", port: 22, key: Self.other) == .revoked(line: 2))
        #expect(file.verdict(host: "Git.Internal", port: 22, key: Self.key) == .trusted(line: 3))
        #expect(file.verdict(host: "bad.internal", port: 22, key: Self.key) == .unknown)
        #expect(file.verdict(host: "internal", port: 22, key: Self.key) == .unknown)
    }

    @Test func refusalMessages() throws {
        let unknown = try #require(HostKeyRefusal.message(.unknown, host: "127.0.0.1", port: 2222, offered: Self.key, file: "/etc/slipway/ssh/known_hosts"))
        #expect(unknown.contains("ssh-ed25519 SHA256:pq2TjHxaPWaWwObxF4njULPD4HAGMoRRWyZGwQ2SuLg"))
        #expect(unknown.contains("ssh-keyscan -p 2222 127.0.0.1 >> /etc/slipway/ssh/known_hosts"))
        let changed = try #require(HostKeyRefusal.message(KnownHosts(Self.plain).verdict(host: "git.internal", port: 22, key: Self.other),
                                                          host: "git.internal", port: 22, offered: Self.other, file: "/k"))
        #expect(changed.hasPrefix("host key for git.internal:22 CHANGED"))
        #expect(HostKeyRefusal.message(.trusted(line: 1), host: "h", port: 22, offered: Self.key, file: "/k") == nil)
    }
}

@Suite struct SSHIdentityTests {
    func generate(_ type: [String]) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("slipway-id-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/ssh-keygen")
        process.arguments = ["-q", "-N", "", "-C", "", "-f", dir.path + "/k"] + type
        try process.run()
        process.waitUntilExit()
        return try String(contentsOfFile: dir.path + "/k", encoding: .utf8)
    }

    @Test func usableKinds() throws {
        for type in [["-t", "ed25519"], ["-t", "ecdsa"]] {
            let kind = SSHIdentity.kind(ofPrivateKey: try generate(type))
            #expect(SSHIdentity.problem(kind, path: "/k") == nil, "\(type)")
        }
    }

    @Test func rsaIsRefusedNamingEd25519() throws {
        for type in [["-t", "rsa", "-b", "1024"], ["-t", "rsa", "-b", "1024", "-m", "PEM"]] {
            let problem = try #require(SSHIdentity.problem(SSHIdentity.kind(ofPrivateKey: try generate(type)), path: "/k"))
            #expect(problem.contains("RSA") && problem.contains("ed25519") && problem.contains("ecdsa"))
        }
        #expect(SSHIdentity.problem(SSHIdentity.kind(ofPrivateKey: "hello"), path: "/k") != nil)
    }
}
