import Foundation
import Testing

/// Issue 16, against the built binary: what a pusher of the app's source tries to get nginx to
/// serve or the agent to do as root.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct HardeningTests {
    static let buildScript = (try? String(contentsOfFile: WorkerApp.packageRoot + "/examples/platform/build-frontend.sh", encoding: .utf8)) ?? ""

    func deploy(_ app: WorkerApp, _ version: String, buildExtra: String) throws -> Fixture.RunResult {
        try app.f.commitSource(["VERSION": version, "build-frontend.sh": Self.buildScript + buildExtra + "\n"], message: version,
                               executable: ["build-frontend.sh"])
        return try app.f.slipway(["deploy", "demo", "--wait"], timeout: 120)
    }

    @Test func nginxNeverServesALinkOutOfTheRelease() throws {
        let app = try WorkerApp(instances: 1, withNginx: true)
        try app.start()
        let nginx = try #require(app.nginx)
        // Another app's secrets on this host.
        let secret = app.f.appsRoot + "/billing/shared/secret.txt"
        try app.f.write("API_KEY=billing-secret\n", to: secret)
        chmod(secret, 0o600)

        // A build that links out of its output: refused with a located message; v1 still serves.
        for (link, target) in [("passwd.txt", "/etc/passwd"), ("root", "/"), ("billing.txt", secret)] {
            let result = try deploy(app, "bad-\(link)", buildExtra: "ln -s \(target) dist/\(link)")
            #expect(result.status != 0)
            #expect(result.output.contains("frontend output 'dist/\(link)' links outside the release (to \(target))"), "\(result.output)")
        }
        #expect(try nginx.get("/").body.contains("version: v1"))

        // A link inside the output is served (it became a hard link to its target).
        let good = try deploy(app, "v2", buildExtra: "ln -s \"assets/$(ls dist/assets | grep '[.]js$')\" dist/latest.js")
        #expect(good.status == 0, "\(good.output)")
        let latest = try nginx.get("/latest.js")
        #expect(latest.status == 200 && latest.body.contains("v2"), "\(latest.status)")

        // Links planted in the live release behind Slipway's back (as a release made before this
        // check would hold them): nginx's disable_symlinks serves none of them.
        let frontend = app.f.appsRoot + "/demo/current/frontend"
        symlink("/etc/passwd", frontend + "/passwd.txt")
        symlink("/", frontend + "/root")
        symlink(secret, frontend + "/billing.txt")
        for path in ["/passwd.txt", "/root/etc/passwd", "/root/etc/hostname", "/billing.txt"] {
            let response = try nginx.get(path)
            #expect(!response.body.contains("root:x:0:0") && !response.body.contains("billing-secret"), "\(path) served \(response.status)")
            #expect(response.status == 404 || response.status == 403 || response.body.contains("version: v2"), "\(path): \(response.status)")
        }
        #expect(try nginx.get("/latest.js").status == 200)
    }

    /// A repository only root can read, elsewhere on the host: what a manifest pusher would
    /// like the agent (root) to publish into a release.
    func rootOnlyRepo() throws -> (dir: String, repo: String) {
        var template = Array((FileManager.default.temporaryDirectory.path + "/slipway-secret-XXXXXX").utf8CString)
        guard mkdtemp(&template) != nil else { throw FixtureError("mkdtemp failed") }
        let dir = String(cString: template)
        let repo = dir + "/secret.git"
        try Fixture.run("/usr/bin/git", ["init", "-q", "-b", "main", repo], timeout: 30)
        try "root-only-secret\n".write(toFile: repo + "/secret.txt", atomically: true, encoding: .utf8)
        try Fixture.run("/usr/bin/git", ["-C", repo, "add", "-A"], timeout: 30)
        try Fixture.run("/usr/bin/git", ["-C", repo, "-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-q", "-m", "secret"], timeout: 30)
        chmod(dir, 0o700)
        chmod(repo, 0o700)
        return (dir, repo)
    }

    @Test func aLocalRepoOutsideLocalRootsIsNeverRead() throws {
        let f = try Fixture(name: "roots")
        let secret = try rootOnlyRepo()
        defer { try? FileManager.default.removeItem(atPath: secret.dir) }
        try f.commitManifest("demo.yaml", "app: demo\nsource:\n  repo: \(secret.repo)\n  ref: main\nbackend: {dir: .}\n")
        let refused = try f.pass()
        #expect(refused.status != 0)
        #expect(refused.output.contains("demo.yaml:3:9: source.repo '\(secret.repo)' is outside this host's git.local_roots (\(f.root))"),
                "\(refused.output)")
        #expect(f.releases().isEmpty)
        // Nothing of it was fetched either.
        let mirrors = (try? FileManager.default.contentsOfDirectory(atPath: f.stateDir + "/mirrors/sources")) ?? []
        #expect(!mirrors.contains { $0.hasPrefix("secret") }, "\(mirrors)")

        // The same manifest with the repo's directory listed deploys: the refusal was the policy's.
        let config = try #require(f.read(f.configPath))
        try f.write(config.replacingOccurrences(of: f.localRoots, with: "git: {local_roots: [\(f.root), \(secret.dir)]}"), to: f.configPath)
        let allowed = try f.pass()
        #expect(allowed.status == 0, "\(allowed.output)")
        #expect(f.currentFile("backend/secret.txt") == "root-only-secret\n")
    }

    @Test func aPrivilegedPortNeedsTheOperatorsFlag() throws {
        let f = try Fixture(name: "port80")
        try f.commitSource(["serve.sh": "exec sleep 600\n"], executable: ["serve.sh"])
        try f.commitManifest("demo.yaml", "app: demo\nsource: {repo: \(f.sourceRepo), ref: main}\nbackend:\n  command: ./serve.sh\n  listen: 127.0.0.1:80\n")
        let refused = try f.pass()
        #expect(refused.status != 0)
        #expect(refused.output.contains("demo.yaml:5:11: backend.listen '127.0.0.1:80' is a privileged port (below 1024), which this host does not allow"),
                "\(refused.output)")
        #expect(f.releases().isEmpty)

        let config = try #require(f.read(f.configPath))
        try f.write(config + "\naccounts: {allow_privileged_ports: true}\n", to: f.configPath)
        let allowed = try f.pass()
        #expect(allowed.status == 0, "\(allowed.output)")
        #expect(f.releases().count == 1)
    }
}
