import Foundation
import LoopbackPorts
import Testing

/// nginx (Debian's, started by the tests with its own prefix on a loopback port) serving the
/// example app's frontend from `current` and proxying /api/ to its workers.
@Suite(.serialized, .endToEnd)
struct NginxTests {
    /// The reader loop (Support/readerloop.py) in the background until `finish()`.
    final class ReaderLoop {
        let process = Process()
        let stopFile: String
        let output: String

        init(port: Int, scratch: String) throws {
            stopFile = scratch + "/reader-stop"
            output = scratch + "/reader.json"
            _ = FileManager.default.createFile(atPath: output, contents: nil)
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = [WorkerApp.packageRoot + "/Tests/EndToEndTests/Support/readerloop.py", "127.0.0.1", String(port), stopFile, "300"]
            process.standardOutput = FileHandle(forWritingAtPath: output)
            process.standardError = FileHandle.nullDevice
            try process.run()
        }

        func finish() throws -> [String: Any] {
            _ = FileManager.default.createFile(atPath: stopFile, contents: nil)
            let deadline = Date().addingTimeInterval(30)
            while process.isRunning && Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            return try JSONSerialization.jsonObject(with: FileManager.default.contents(atPath: output) ?? Data()) as? [String: Any] ?? [:]
        }
    }

    /// `slipway_nginx_reloads_total` as the agent's /metrics says (0 when absent).
    static func reloads(_ app: WorkerApp) throws -> Int { try counter("slipway_nginx_reloads_total", of: app) }

    /// A counter without labels from the agent's /metrics (0 when absent).
    static func counter(_ name: String, of app: WorkerApp) throws -> Int {
        let line = try app.metrics().split(separator: "\n").first { $0.hasPrefix(name + " ") }
        return line.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
    }

    @Test func tenDeploysNeedNoReloadAndEveryPageLoadsItsOwnAssets() throws {
        let app = try WorkerApp(instances: 2, withNginx: true)
        try app.start()
        let nginx = try #require(app.nginx)
        #expect(try nginx.get("/").body.contains("version: v1"))
        let workersBefore = nginx.settledWorkers()
        #expect(workersBefore.count == 1)
        let reloadsBefore = try Self.reloads(app)
        let reader = try ReaderLoop(port: nginx.port, scratch: app.f.scratch)
        for version in 2...11 {
            let result = try app.deployNewVersion("v\(version)")
            #expect(result.status == 0, "\(result.output)")
        }
        Thread.sleep(forTimeInterval: 0.5)
        let summary = try reader.finish()
        #expect(summary["error_count"] as? Int == 0, "\(summary)")
        #expect((summary["pages"] as? Int ?? 0) > 100, "\(summary)")
        #expect(((summary["versions"] as? [String: Int]) ?? [:]).count >= 5, "\(summary)")
        // A deploy is a symlink switch: nginx was never reloaded (same worker processes).
        #expect(nginx.workerPIDs() == workersBefore)
        #expect(try Self.reloads(app) == reloadsBefore, "the agent reloaded nginx during the deploys")
        #expect(try nginx.get("/").body.contains("version: v11"))
        print("reader loop over 10 deploys: \(summary["pages"] ?? 0) pages, \(summary["assets"] ?? 0) assets, \(summary["error_count"] ?? -1) errors, versions \(summary["versions"] ?? [:])")
    }

    @Test func htmlIsRevalidatedHashedAssetsAreImmutableAndAMissingAssetIs404() throws {
        let app = try WorkerApp(instances: 1, withNginx: true)
        try app.start()
        let nginx = try #require(app.nginx)
        let index = try nginx.get("/")
        #expect(index.status == 200 && index.headers["cache-control"] == "no-cache", "\(index.headers)")
        #expect(index.headers["content-type"]?.hasPrefix("text/html") == true)
        let explicit = try nginx.get("/index.html")
        #expect(explicit.status == 200 && explicit.headers["cache-control"] == "no-cache")
        let script = try #require(index.body.range(of: #"/assets/app-[0-9a-f]{8}\.js"#, options: .regularExpression).map { String(index.body[$0]) })
        let asset = try nginx.get(script)
        #expect(asset.status == 200 && asset.headers["cache-control"] == "public, max-age=31536000, immutable", "\(asset.headers)")
        #expect(asset.headers["content-type"]?.contains("javascript") == true)
        // A missing hashed asset, or any missing file with an extension: 404, never the SPA's HTML.
        for missing in ["/assets/app-0123abcd.js", "/assets/missing.css", "/favicon.ico"] {
            let answer = try nginx.get(missing)
            #expect(answer.status == 404, "\(missing): \(answer.status)")
            #expect(answer.headers["content-type"]?.hasPrefix("text/html") != true || !answer.body.contains("version:"))
        }
        // A navigation path falls back to index.html (spa: true).
        let page = try nginx.get("/settings/profile")
        #expect(page.status == 200 && page.body.contains("version: v1") && page.headers["cache-control"] == "no-cache")
        // Nothing outside current/frontend is reachable through the server's root.
        for private_ in ["/current/backend/server.js", "/releases/", "/shared/", "/../state/state.json", "/frontend-archive/.slipway-releases"] {
            let answer = try nginx.get(private_)
            #expect(answer.status == 404 || !answer.body.contains("require("), "\(private_): \(answer.status)")
        }
        let rendered = try #require(app.f.read(nginx.sitesDir + "/slipway-demo.conf"))
        #expect(!rendered.contains(" if ") && !rendered.contains("\tif "))
    }

    @Test func anOldIndexStillLoadsItsAssetsAfterTwoDeploys() throws {
        let app = try WorkerApp(instances: 1, withNginx: true)
        try app.start()
        let nginx = try #require(app.nginx)
        let oldIndex = try nginx.get("/").body
        let oldAssets = oldIndex.matches(of: #/\/assets\/app-[0-9a-f]{8}\.(js|css)/#).map { String($0.output.0) }
        #expect(oldAssets.count == 2)
        for version in 2...3 { #expect(try app.deployNewVersion("v\(version)").status == 0) }
        #expect(try nginx.get("/").body.contains("version: v3"))
        for asset in oldAssets {
            let answer = try nginx.get(asset)
            #expect(answer.status == 200, "\(asset) after two deploys: \(answer.status)")
            #expect(!asset.hasSuffix(".js") || answer.body.contains("version v1"))
        }
        // Once retention prunes v1's release, its assets are gone too.
        let manifest = try #require(app.f.read(app.f.manifestsRepo + "/manifests/demo.yaml"))
        try app.f.commitManifest("demo.yaml", manifest.replacingOccurrences(of: "keep: 4", with: "keep: 2"))
        #expect(try app.f.slipway(["deploy", "--wait"]).status == 0)
        #expect(try nginx.get(oldAssets.first { $0.hasSuffix(".js") }!).status == 404)
    }

    @Test func aServerBlockNginxRefusesNeverReachesAReloadAndThePreviousOneServes() throws {
        let app = try WorkerApp(instances: 1, withNginx: true)
        let config = try #require(app.f.read(app.f.configPath))
        try app.f.write(config + "\nremoval_grace: 2s\n", to: app.f.configPath)
        try app.start()
        let nginx = try #require(app.nginx)
        let before = try #require(app.f.read(nginx.sitesDir + "/slipway-demo.conf"))
        let workers = nginx.settledWorkers()
        // A regex server_name passes Slipway's checks (nothing can break out of the directive),
        // but nginx cannot compile it.
        try app.commitManifest(instances: 1, serve: "serve:\n  server_name: \"~^(broken\"\n  listen: 127.0.0.1:\(nginx.port)\n  spa: true")
        let result = try app.f.slipway(["deploy", "--wait"])
        #expect(result.status != 0)
        let status = try app.f.appStatus()
        #expect(status["condition"] as? String == "failed")
        let message = status["message"] as? String ?? ""
        #expect(message.contains("nginx refused the new server block") && message.contains("pcre"), "\(message)")
        #expect(app.f.read(nginx.sitesDir + "/slipway-demo.conf") == before)
        #expect(nginx.workerPIDs() == workers, "nginx was reloaded")
        #expect(try nginx.get("/").status == 200)
        #expect(try app.metrics().contains("slipway_nginx_refusals_total{app=\"demo\"} 1"))
        // Fixed: written, checked, reloaded once.
        try app.commitManifest(instances: 1, serve: "serve:\n  server_name: [localhost, demo.test]\n  listen: 127.0.0.1:\(nginx.port)\n  spa: true")
        #expect(try app.f.slipway(["deploy", "--wait"]).status == 0)
        #expect(app.f.read(nginx.sitesDir + "/slipway-demo.conf")?.contains("server_name localhost demo.test;") == true)
        #expect(app.f.waitUntil(seconds: 10) { nginx.workerPIDs() != workers && !nginx.workerPIDs().isEmpty })
        #expect(try nginx.get("/", headers: ["Host: demo.test"]).status == 200)
        // The app's manifest goes: its server block serves through removal_grace, then goes too.
        try app.f.removeManifest("demo.yaml")
        #expect(try app.f.slipway(["deploy", "--wait"]).status == 0)
        #expect(FileManager.default.fileExists(atPath: nginx.sitesDir + "/slipway-demo.conf"))
        #expect(app.f.waitUntil(seconds: 20) { !FileManager.default.fileExists(atPath: nginx.sitesDir + "/slipway-demo.conf") })
    }

    /// `nginx -s reload` exits 0 even when the master cannot bind a new `listen` and keeps its
    /// old configuration. The agent finds out (its master started no new workers; with no
    /// `pid_file`, by connecting), puts the previous server block back (so the file is what nginx
    /// runs), and tries again on each pass until the port is free.
    @Test(arguments: [true, false])
    func aReloadNginxCannotTakeIsFoundUndoneAndRetriedUntilItTakes(masterKnown: Bool) throws {
        let app = try WorkerApp(instances: 1, withNginx: true)
        let nginx = try #require(app.nginx)
        if !masterKnown {
            let config = try #require(app.f.read(app.f.configPath))
            try app.f.write(config.replacingOccurrences(of: nginx.pidFileLine, with: ""), to: app.f.configPath)
        }
        try app.start()
        // Held as an outgoing connection's local port is: bound, not listening.
        let port = try WorkerApp.freePort()
        var holder: Int32? = try LoopbackPort.hold(port)
        defer { if let holder { close(holder) } }
        let message = try Self.failToMove(app, toHeld: port)
        #expect(message.contains("nginx was reloaded, but nothing accepts connections on 127.0.0.1:\(port) (demo)"), "\(message)")
        let reloads = try Self.reloads(app)
        // The port is free: the next pass writes the block again, reloads, and nginx takes it.
        close(holder!)
        holder = nil
        let retried = try app.f.slipway(["deploy", "--wait"])
        #expect(retried.status == 0, "\(retried.output)")
        #expect(app.f.read(nginx.sitesDir + "/slipway-demo.conf")?.contains("listen 127.0.0.1:\(port);") == true)
        let served = try Fixture.run("/usr/bin/curl", ["-sS", "--max-time", "10", "http://127.0.0.1:\(port)/"], timeout: 20)
        #expect(served.stdout.contains("version: v1"), "\(served.stdout)\(served.stderr)")
        #expect(try app.f.appStatus()["condition"] as? String != "failed")
        #expect(try Self.reloads(app) == reloads + 1, "only the reload nginx took counts as one")
    }

    /// The port nginx must bind is held by another program that listens there: a connection to it
    /// is accepted either way, so only nginx's master tells. It started no new workers: the
    /// agent puts the previous server block back and says what to look at.
    @Test func aReloadNginxCannotTakeOnAPortAnotherProgramServesIsFound() throws {
        let app = try WorkerApp(instances: 1, withNginx: true)
        try app.start()
        let master = try #require(app.nginx?.masterPID)
        let port = try WorkerApp.freePort()
        let holder = try LoopbackPort.hold(port)
        defer { close(holder) }
        #expect(listen(holder, 16) == 0)
        let message = try Self.failToMove(app, toHeld: port)
        #expect(message.contains("nginx was reloaded, but its master (pid \(master), \(app.nginx!.prefix)/nginx.pid) finished the reload without starting new workers, "
                                 + "so it kept its previous configuration: its error log says why"), "\(message)")
    }

    /// Moves the app's `serve.listen` to `port`, which another socket holds: the deploy fails, the
    /// previous server block is back on disk and serving, and the failure is counted. Returns the
    /// app's status message.
    static func failToMove(_ app: WorkerApp, toHeld port: Int) throws -> String {
        let nginx = try #require(app.nginx)
        let before = try #require(app.f.read(nginx.sitesDir + "/slipway-demo.conf"))
        try app.commitManifest(instances: 1, serve: "serve:\n  server_name: localhost\n  listen: 127.0.0.1:\(port)\n  spa: true")
        let failed = try app.f.slipway(["deploy", "--wait"])
        #expect(failed.status != 0, "\(failed.output)")
        let status = try app.f.appStatus()
        let message = status["message"] as? String ?? ""
        #expect(status["condition"] as? String == "failed")
        #expect(message.contains("ss -tanp 'sport = :\(port)'") && message.contains("the previous server block is back"), "\(message)")
        let errorLog = app.f.read(nginx.prefix + "/logs/error.log") ?? ""
        #expect(errorLog.contains("bind() to 127.0.0.1:\(port) failed (98: Address already in use)"), "\(errorLog)")
        #expect(app.f.read(nginx.sitesDir + "/slipway-demo.conf") == before)
        #expect(try nginx.get("/").body.contains("version: v1"), "the previous server block stopped serving")
        #expect(try Self.counter("slipway_nginx_reload_failures_total", of: app) >= 1)
        return message
    }

    @Test func apiRequestsAndWebSocketsReachTheWorkers() throws {
        let app = try WorkerApp(instances: 2, withNginx: true)
        try app.start()
        let nginx = try #require(app.nginx)
        let release = try #require(app.f.current())
        let hello = try nginx.get("/api/hello")
        #expect(hello.status == 200 && hello.headers["x-release"] == release && hello.body.contains("\"greeting\""), "\(hello)")
        let missing = try nginx.get("/api/nothing-here.js")
        #expect(missing.status == 404 && missing.headers["x-release"] == release, "proxied, not served as a file")
        // A WebSocket handshake and one echoed message, through nginx.
        let script = """
        import base64, os, socket, sys
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall(("GET /api/ws HTTP/1.1\\r\\nHost: localhost\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n"
                   "Sec-WebSocket-Key: " + key + "\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n").encode())
        head = b""
        while b"\\r\\n\\r\\n" not in head: head += s.recv(1)
        print(head.split(b"\\r\\n")[0].decode())
        payload, mask = b"ping", os.urandom(4)
        s.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
        frame = s.recv(2)
        print(s.recv(frame[1] & 0x7f).decode())
        """
        try app.f.write(script, to: app.f.scratch + "/ws.py")
        let result = try Fixture.run("/usr/bin/python3", [app.f.scratch + "/ws.py", String(nginx.port)], timeout: 30)
        #expect(result.stdout.contains("HTTP/1.1 101 Switching Protocols"), "\(result.output)")
        #expect(result.stdout.contains("echo from \(release): ping"), "\(result.output)")
        let rendered = try #require(app.f.read(nginx.sitesDir + "/slipway-demo.conf"))
        for line in ["proxy_http_version 1.1;", "proxy_set_header Upgrade $http_upgrade;", "proxy_set_header X-Forwarded-For",
                     "proxy_set_header Host $host;", "proxy_read_timeout 60s;", "proxy_pass http://slipway_demo_workers;",
                     "server 127.0.0.1:\(app.port) max_fails=0;"] {
            #expect(rendered.contains(line), "\(line)")
        }
    }
}
