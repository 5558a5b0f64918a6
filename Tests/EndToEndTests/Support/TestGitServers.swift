import Foundation
import CSpawn

/// A real OpenSSH server (Debian's sshd) on loopback, with its own config, host key and port, and
/// a throwaway account whose shell is git-shell: the agent fetches from it over ssh:// exactly as
/// from a git server. Repos live in the fixture and are served by absolute path.
final class TestSSHServer {
    let dir: String
    let account: String
    let address: String
    let port: Int
    var hostKey: String { dir + "/host_ed25519" }
    var authorizedKeys: String { dir + "/authorized_keys" }
    var log: String { dir + "/sshd.log" }
    /// The network namespace sshd runs in (the fleet test's git server host); nil: this one.
    let namespace: String?

    init(root: String, address: String = "127.0.0.1", port: Int? = nil, namespace: String? = nil) throws {
        dir = root + "/sshd"
        self.namespace = namespace
        self.address = address
        self.port = try port ?? WorkerApp.freePort()
        account = "sw14g" + String(UInt32.random(in: 0..<UInt32.max), radix: 36)
        try FileManager.default.createDirectory(atPath: dir + "/home", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        try Self.must("/usr/sbin/useradd", ["-M", "-d", dir + "/home", "-s", "/usr/bin/git-shell", account])
        // useradd locks the password ('!'), which sshd refuses even for key logins with UsePAM no.
        try Self.must("/usr/sbin/usermod", ["-p", "*", account])
        // Repos in the fixture belong to root; git refuses another owner's repo unless told.
        try "[safe]\n\tdirectory = *\n".write(toFile: dir + "/home/.gitconfig", atomically: true, encoding: .utf8)
        try "".write(toFile: authorizedKeys, atomically: true, encoding: .utf8)
        try newHostKey()
        try """
        Port \(self.port)
        ListenAddress \(address)
        HostKey \(hostKey)
        PidFile \(dir)/sshd.pid
        AuthorizedKeysFile \(authorizedKeys)
        PasswordAuthentication no
        KbdInteractiveAuthentication no
        UsePAM no
        StrictModes no
        PermitRootLogin no
        AllowUsers \(account)
        LogLevel VERBOSE

        """.write(toFile: dir + "/sshd_config", atomically: true, encoding: .utf8)
    }

    /// Replaces the server's host key (restart to use it).
    func newHostKey() throws {
        unlink(hostKey)
        unlink(hostKey + ".pub")
        try Self.must("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", hostKey])
    }

    func authorize(_ publicKeyFile: String) throws {
        let key = try String(contentsOfFile: publicKeyFile, encoding: .utf8)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: authorizedKeys))
        handle.seekToEndOfFile()
        handle.write(Data(key.utf8))
        try handle.close()
    }

    /// An ssh:// URL for a repo at an absolute path.
    func url(_ path: String) -> String { "ssh://\(account)@\(address):\(port)\(path)" }

    /// sshd daemonizes itself: a long-lived Foundation `Process` child makes Foundation block in
    /// waitpid on it when any other child exits, hanging the test run.
    func start() throws {
        let before = (try? String(contentsOfFile: log, encoding: .utf8))?.count ?? 0
        if let namespace {
            try Self.must("/usr/sbin/ip", ["netns", "exec", namespace, "/usr/sbin/sshd", "-f", dir + "/sshd_config", "-E", log])
        } else {
            try Self.must("/usr/sbin/sshd", ["-f", dir + "/sshd_config", "-E", log])
        }
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if text.count > before, text.dropFirst(before).contains("Server listening on \(address) port \(port)") { return }
            usleep(20_000)
        }
        throw FixtureError("sshd did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }

    var pid: Int32? {
        (try? String(contentsOfFile: dir + "/sshd.pid", encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    func stop() {
        guard let pid else { return }
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(5)
        while WorkerApp.isRunning(pid) && Date() < deadline { usleep(20_000) }
        if WorkerApp.isRunning(pid) { kill(pid, SIGKILL) }
        unlink(dir + "/sshd.pid")
    }

    /// Logins the server accepted so far (each is one connection).
    var acceptedLogins: Int {
        ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").components(separatedBy: "Accepted publickey for \(account)").count - 1
    }

    /// TCP connections the server saw (logins or not).
    var connectionsSeen: Int {
        ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").components(separatedBy: "Connection from ").count - 1
    }

    /// `ssh-keyscan` output for this server, as an operator adds it to known_hosts.
    func keyscan() throws -> String {
        let result = try Fixture.run("/usr/bin/ssh-keyscan", ["-t", "ed25519", "-p", String(port), address], timeout: 20)
        guard result.status == 0, !result.stdout.isEmpty else { throw FixtureError("ssh-keyscan failed: \(result.stderr)") }
        return result.stdout
    }

    deinit {
        stop()
        // Connections' children run as the account: end them before removing it.
        _ = try? Fixture.run("/usr/bin/pkill", ["-KILL", "-u", account], timeout: 5)
        _ = try? Fixture.run("/usr/sbin/userdel", [account], timeout: 10)
    }

    static func must(_ tool: String, _ arguments: [String]) throws {
        let result = try Fixture.run(tool, arguments, timeout: 30)
        guard result.status == 0 else { throw FixtureError("\(tool) \(arguments.joined(separator: " ")) failed: \(result.output)") }
    }

    /// A fresh SSH key pair (`type`: ed25519, ecdsa, rsa) at `path`.
    static func makeKey(_ path: String, type: String = "ed25519") throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try must("/usr/bin/ssh-keygen", ["-q", "-t", type, "-N", "", "-C", "slipway-test", "-f", path])
    }
}

/// A real HTTPS git server: nginx with TLS from a test CA (openssl), basic auth, and
/// `git http-backend` behind fcgiwrap, all Debian's, on a loopback port.
final class TestHTTPSGitServer {
    let dir: String
    let nginx: TestNginx
    let projectRoot: String
    let username = "deploy"
    let token: String
    var caCert: String { dir + "/ca.pem" }

    init(root: String) throws {
        dir = root + "/https"
        projectRoot = root + "/https-repos"
        token = "tok-" + UUID().uuidString.lowercased()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: projectRoot, withIntermediateDirectories: true)
        nginx = try TestNginx(root: root)
        let ssl = "/usr/bin/openssl"
        try TestSSHServer.must(ssl, ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                                     "-subj", "/CN=Slipway Test CA", "-keyout", dir + "/ca.key", "-out", caCert])
        try TestSSHServer.must(ssl, ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                                     "-subj", "/CN=127.0.0.1", "-keyout", dir + "/server.key", "-out", dir + "/server.csr"])
        // mbedTLS ignores IP entries in subjectAltName: the address is a DNS entry too.
        try "subjectAltName=DNS:127.0.0.1,IP:127.0.0.1\n".write(toFile: dir + "/san.ext", atomically: true, encoding: .utf8)
        try TestSSHServer.must(ssl, ["x509", "-req", "-in", dir + "/server.csr", "-CA", caCert, "-CAkey", dir + "/ca.key",
                                     "-CAcreateserial", "-days", "2", "-extfile", dir + "/san.ext", "-out", dir + "/server.pem"])
        let hash = try Fixture.run(ssl, ["passwd", "-apr1", token], timeout: 10).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try "\(username):\(hash)\n".write(toFile: dir + "/htpasswd", atomically: true, encoding: .utf8)
        try """
        server {
            listen 127.0.0.1:\(nginx.port) ssl;
            ssl_certificate \(dir)/server.pem;
            ssl_certificate_key \(dir)/server.key;
            location / {
                auth_basic "git";
                auth_basic_user_file \(dir)/htpasswd;
                include /etc/nginx/fastcgi_params;
                fastcgi_param SCRIPT_FILENAME /usr/lib/git-core/git-http-backend;
                fastcgi_param GIT_PROJECT_ROOT \(projectRoot);
                fastcgi_param GIT_HTTP_EXPORT_ALL 1;
                fastcgi_param PATH_INFO $uri;
                fastcgi_param REMOTE_USER $remote_user;
                fastcgi_pass unix:\(dir)/fcgi.sock;
            }
        }
        """.write(toFile: nginx.sitesDir + "/git.conf", atomically: true, encoding: .utf8)
    }

    /// slipway_spawn + waitpid, bypassing Foundation's Process, which here missed the exit of a
    /// shell whose grandchild lives on (and hung the test). Every fd but stdio is closed in the
    /// child: what it starts lives on (fcgiwrap, a fleet's agents), and an fd another test had
    /// open at that moment without O_CLOEXEC (Foundation's `Pipe`, FileManager's copy) would live
    /// on in it: a test's output pipe would never reach EOF, and a binary copy still open for
    /// writing made ReexecTests' exec of it fail with ETXTBSY in CI.
    static func spawnAndWait(_ argv: [String]) throws {
        var pid: pid_t = 0
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        guard slipway_spawn("/", cArgs, environ, 0, 1, 2, -1, &pid) == 0 else { throw FixtureError("cannot spawn \(argv)") }
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
    }

    func url(_ name: String) -> String { "https://127.0.0.1:\(nginx.port)/\(name)" }

    func start() throws {
        // In its own session (so stop() can SIGKILL fcgiwrap and its CGI children as one group),
        // detached: not a Foundation Process child (see TestSSHServer.start).
        let script = "setsid -f /bin/sh -c 'echo $$ > \(dir)/fcgi.pid; exec /usr/sbin/fcgiwrap -s unix:\(dir)/fcgi.sock' >/dev/null 2>&1 </dev/null"
        try Self.spawnAndWait(["/bin/sh", "-c", script])
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: dir + "/fcgi.sock") && Date() < deadline { usleep(20_000) }
        chmod(dir + "/fcgi.sock", 0o666)
        try nginx.start()
    }

    deinit {
        nginx.stop()
        if let text = try? String(contentsOfFile: dir + "/fcgi.pid", encoding: .utf8), let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1 {
            // fcgiwrap's children ignore SIGTERM.
            kill(-pid, SIGKILL)
        }
    }
}
