import Foundation
import Testing

/// Issue 16, against the built binary: what a pusher of the app's source tries to get nginx to
/// serve or the agent to do as root.
@Suite(.serialized, .endToEnd)
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
        let dir = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let repo = dir + "/secret.git"
        _ = try Fixture.run("/usr/bin/git", ["init", "-q", "-b", "main", repo], timeout: 30)
        try "root-only-secret\n".write(toFile: repo + "/secret.txt", atomically: true, encoding: .utf8)
        _ = try Fixture.run("/usr/bin/git", ["-C", repo, "add", "-A"], timeout: 30)
        _ = try Fixture.run("/usr/bin/git", ["-C", repo, "-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-q", "-m", "secret"], timeout: 30)
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

    /// An operator's choice of apps_root and state_dir below a symlink (`/srv -> /data/srv`):
    /// only the parts Slipway makes and walks are opened without following links.
    @Test func anAppsRootBelowASymlinkIsAccepted() throws {
        let f = try Fixture(name: "prefix")
        try FileManager.default.createDirectory(atPath: f.root + "/data/srv", withIntermediateDirectories: true)
        symlink(f.root + "/data/srv", f.root + "/srv")
        let config = try #require(f.read(f.configPath))
            .replacingOccurrences(of: "apps_root: \(f.appsRoot)", with: "apps_root: \(f.root)/srv/apps")
            .replacingOccurrences(of: "state_dir: \(f.stateDir)", with: "state_dir: \(f.root)/srv/state")
        try f.write(config, to: f.configPath)
        try f.commitSource(["index.html": "v1"])
        try f.commitManifest("demo.yaml", f.manifest(ref: "main", extra: "shared: [uploads]"))
        let result = try f.pass()
        #expect(result.status == 0, "\(result.output)")
        #expect(f.read(f.root + "/data/srv/apps/demo/current/frontend/index.html") == "v1")
        var isDirectory: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: f.root + "/data/srv/apps/demo/shared/uploads", isDirectory: &isDirectory) && isDirectory.boolValue)
        #expect(try f.slipway(["status"]).output.contains("demo"))
    }

    /// `sleep` processes whose last argument is `tag` or `tag + 1`.
    static func strays(_ tag: Int) -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { name -> Int32? in
            guard let pid = Int32(name), let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return nil }
            let argv = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            return argv.first?.hasSuffix("sleep") == true && (argv.last == "\(tag)" || argv.last == "\(tag + 1)") ? pid : nil
        }
    }

    /// The fallback for hosts without a writable cgroup v2, forced with SLIPWAY_CONTAINMENT=subreaper:
    /// a build's `setsid` stray and double-forked daemon are gone once the build is.
    @Test func theSubreaperFallbackLeavesNothingOfABuild() throws {
        let f = try Fixture(name: "reaper")
        let tag = Int.random(in: 670_000...679_999) * 2
        let escapes = "env -i setsid sleep \(tag) & /usr/bin/python3 -c 'import os\nif os.fork(): os._exit(0)\nos.setsid()\n"
            + "if os.fork(): os._exit(0)\nos.execv(\"/bin/sleep\", [\"sleep\", \"\(tag + 1)\"])'; sleep 1; "
            + "ps -eo args= | grep -qx 'sleep \(tag)' && ps -eo args= | grep -qx 'sleep \(tag + 1)' && echo strays-started > \(f.scratch)/started"
        try f.commitSource(["index.html": "v1"])
        try f.commitManifest("demo.yaml", f.manifest(ref: "main", backendBuild: escapes))
        var environment = ProcessInfo.processInfo.environment
        environment["SLIPWAY_CONTAINMENT"] = "subreaper"
        let agent = try f.launch(["agent"], environment: environment)
        defer {
            kill(agent.processIdentifier, SIGTERM)
            agent.waitUntilExit()
            for pid in Self.strays(tag) { kill(pid, SIGKILL) }
        }
        #expect(f.waitUntil(seconds: 60) { f.current() != nil }, "\((try? f.slipway(["status"]).output) ?? "")")
        #expect(f.read(f.scratch + "/started") == "strays-started\n", "the build never started its strays: the test proved nothing")
        #expect(f.waitUntil(seconds: 10) { Self.strays(tag).isEmpty }, "left running: \(Self.strays(tag))")
        #expect(try f.slipway(["status"]).output.contains("builds and workers contained by a child subreaper (PR_SET_CHILD_SUBREAPER"))
    }

    /// kill -9 of the agent during a build below the subreaper: the next agent starts at once,
    /// takes the lock, stops the dead agent's build and deploys. The reaper (a fork of the agent
    /// that never execs) held the agent's lock until the build ended, and every next agent was
    /// refused ("another Slipway agent (pid …) holds agent.lock").
    @Test(.timeLimit(.minutes(1))) func afterAKillDuringABuildBelowTheSubreaperTheNextAgentStartsAtOnce() throws {
        let f = try Fixture(name: "reaperlock")
        let tag = Int.random(in: 680_000...689_999) * 2
        let slow = f.scratch + "/slow"
        #expect(FileManager.default.createFile(atPath: slow, contents: nil))
        let build = "touch \(f.scratch)/building; if [ -e \(slow) ]; then sleep \(tag); fi"
        try f.commitSource(["index.html": "v1"])
        try f.commitManifest("demo.yaml", f.manifest(ref: "main", backendBuild: build))
        var environment = ProcessInfo.processInfo.environment
        environment["SLIPWAY_CONTAINMENT"] = "subreaper"
        let first = try f.launch(["agent"], environment: environment)
        defer { for pid in Self.strays(tag) { kill(pid, SIGKILL) } }
        let building = f.waitUntil(seconds: 60) { !Self.strays(tag).isEmpty }
        kill(first.processIdentifier, SIGKILL)
        // Not `first.waitUntilExit()`: Foundation learns of a child's end when a socket the child
        // inherited closes, and a reaper holding the agent's files holds that one too, so the wait
        // would block (past this test's time limit, which cannot stop it) for as long as the build.
        #expect(f.waitUntil(seconds: 10) { !WorkerApp.isRunning(first.processIdentifier) }, "SIGKILL did not end the agent")
        #expect(building, "the build never reached its sleep: the test proved nothing")
        unlink(slow)
        let second = try f.launch(["agent"], environment: environment)
        defer {
            kill(second.processIdentifier, SIGTERM)
            second.waitUntilExit()
        }
        #expect(f.waitUntil(seconds: 20) { f.current() != nil },
                "no deploy after the restart (the agent \(second.isRunning ? "runs" : "exited with \(second.terminationStatus)"))")
        #expect(f.waitUntil(seconds: 10) { Self.strays(tag).isEmpty }, "the dead agent's build still runs: \(Self.strays(tag))")
    }
}
