import Foundation
import LoopbackPorts
import Testing

/// The example app (examples/platform: Node + Debian's node-express) deployed as workers by a
/// running agent, on a free loopback port, with a load generator and (optionally) Redis.
final class WorkerApp {
    let f: Fixture
    let port: Int
    private var agentProcess: AgentProcess?
    var agent: Process { agentProcess?.process ?? Process() }
    var redis: Process?
    var instances = 2
    /// What `start()` waits on, until it answers 200.
    var healthPath = "/api/health"
    var redisPort: Int?
    /// The slipway binary the agent runs (a copy, for the re-exec tests), and whether it is
    /// started detached (see `AgentProcess`).
    var agentBinary = Fixture.binary
    var detachedAgent = false
    var agentEnvironment: [String: String] = [:]
    var agentPID: Int32 { agentProcess?.pid ?? 0 }
    var agentIsRunning: Bool { agentProcess?.isRunning ?? false }
    var envDir: String { f.root + "/env" }
    var agentLog: String { f.read(f.root + "/agent.log") ?? "" }
    var workerLog: String { f.read(f.stateDir + "/logs/demo/workers.log") ?? "" }

    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    /// `backend` holds extra lines for the manifest's backend section; `env` the manifest's env.
    var nginx: TestNginx?

    init(instances: Int = 2, backend: String = "", env: [String: String] = [:], withRedis: Bool = false, withNginx: Bool = false) throws {
        f = try Fixture(name: "workers")
        port = try WorkerApp.freePort()
        try FileManager.default.createDirectory(atPath: f.root + "/env", withIntermediateDirectories: true)
        if withRedis { try startRedis() }
        if withNginx {
            nginx = try TestNginx(root: f.root)
            try nginx?.start()
        }
        // The example app's source, as its own git repo.
        try FileManager.default.removeItem(atPath: f.sourceRepo)
        try FileManager.default.copyItem(atPath: WorkerApp.packageRoot + "/examples/platform", toPath: f.sourceRepo)
        try f.git(["init", "-q", "-b", "main", f.sourceRepo])
        try f.commitSource([:], message: "v1")
        try f.write("""
        host: web-1
        manifests:
          repo: \(f.manifestsRepo)
        apps_root: \(f.appsRoot)
        state_dir: \(f.stateDir)
        apps_user: \(Fixture.appsUser)
        \(f.localRoots)
        env_dir: \(envDir)
        poll_interval: 1h
        listen: 127.0.0.1:0
        \(nginx?.agentConfig ?? "")
        """, to: f.configPath)
        try commitManifest(instances: instances, backend: backend, env: env)
    }

    deinit {
        stop()
        nginx?.stop()
        redis.map { kill($0.processIdentifier, SIGKILL); $0.waitUntilExit() }
    }

    /// `serve` is the frontend's serve section (defaults to nginx on its port when the app has one).
    /// `minReady`: the manifest's backend.ready.min_ready.
    func commitManifest(instances: Int = 2, backend: String = "", env: [String: String] = [:], serve: String? = nil, keep: Int = 4,
                        minReady: String? = nil) throws {
        self.instances = instances
        let serveLines = (serve ?? nginx.map { "serve:\n  server_name: localhost\n  listen: 127.0.0.1:\($0.port)\n  spa: true\n  api: {path: /api/}" } ?? "")
            .split(separator: "\n").map { "  " + $0 }.joined(separator: "\n")
        var allEnv = ["NODE_PATH": "/usr/share/nodejs"].merging(env) { $1 }
        if let redisPort { allEnv["REDIS_URL"] = "redis://127.0.0.1:\(redisPort)" }
        let envLines = allEnv.sorted { $0.key < $1.key }.map { "  \($0.key): \(Fixture.yamlQuoted($0.value))" }.joined(separator: "\n")
        let extra = backend.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n")
        try f.commitManifest("demo.yaml", """
        app: demo
        source:
          repo: \(f.sourceRepo)
          ref: main
        releases:
          keep: \(keep)
        env:
        \(envLines)
        frontend:
          build: ./build-frontend.sh
          output: dist
        \(serveLines)
        backend:
          dir: server
          command: node server.js
          instances: \(instances)
          listen: 127.0.0.1:\(port)
          ready:
            notify: true
            timeout: 30s\(minReady.map { "\n    min_ready: \($0)" } ?? "")
          health:
            path: /api/health
          stop:
            signal: SIGINT
            timeout: 5s
        \(extra)
        """)
    }

    /// Starts the agent and (unless `waiting` is false) waits until the app answers on its port.
    func start(waiting: Bool = true) throws {
        agentProcess = try AgentProcess(config: f.configPath, log: f.root + "/agent.log", binary: agentBinary,
                                        detached: detachedAgent, environment: agentEnvironment)
        guard waiting else { return }
        var seen = (health: 0, workers: [String]())
        let up = f.waitUntil(seconds: 60) {
            seen = ((try? self.get(self.healthPath).status) ?? 0, ((try? self.workers()) ?? []).map { "\($0["pid"] ?? "-") \($0["state"] ?? "-")" })
            return seen.health == 200 && seen.workers.count == self.instances && seen.workers.allSatisfy { $0.hasSuffix(" ready") }
        }
        guard up else {
            // The end of each log: what the agent did last is what tells why (CI shows the head).
            throw FixtureError("the app did not come up: \(healthPath) answered \(seen.health), workers \(seen.workers)\n"
                + "agent log (end):\n\(agentLog.suffix(6000))\nworker log (end):\n\(workerLog.suffix(3000))")
        }
        // With nginx: the pass ends by writing the server block and reloading nginx.
        if let nginx, !f.waitUntil(seconds: 30, { (try? nginx.get("/").status) == 200 && nginx.settledWorkers().count == 1 }) {
            throw FixtureError("nginx does not serve the app: \(agentLog)")
        }
    }

    /// SIGTERM, as systemd stops it; SIGKILL after 20 s. Returns whether it exited on SIGTERM.
    @discardableResult
    func stop() -> Bool {
        agentProcess?.stop() ?? true
    }

    /// A new source commit (VERSION changed) and a pass that deploys it, followed to the end.
    @discardableResult
    func deployNewVersion(_ version: String, files: [String: String] = [:]) throws -> Fixture.RunResult {
        try f.commitSource(files.merging(["VERSION": version]) { $1 }, message: version)
        return try f.slipway(["deploy", "demo", "--wait"], timeout: 120)
    }

    func get(_ path: String, headers: [String] = []) throws -> (status: Int, release: String, body: String) {
        let result = try Fixture.run("/usr/bin/curl", ["-sS", "--max-time", "10", "-D", "-", "-o", "-"]
            + headers.flatMap { ["-H", $0] } + ["http://127.0.0.1:\(port)\(path)"], timeout: 20)
        let text = result.stdout.replacingOccurrences(of: "\r", with: "")
        let parts = text.components(separatedBy: "\n\n")
        let head = parts.first ?? ""
        let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
        let release = head.split(separator: "\n").first { $0.lowercased().hasPrefix("x-release:") }
            .map { $0.dropFirst("x-release:".count).trimmingCharacters(in: .whitespaces) } ?? ""
        return (status, release, parts.dropFirst().joined(separator: "\n\n"))
    }

    /// The workers as `slipway status --json` reports them.
    func workers() throws -> [[String: Any]] {
        let table = try f.appStatus()["workers"] as? [String: Any]
        return table?["workers"] as? [[String: Any]] ?? []
    }

    func workerPIDs() throws -> Set<Int32> {
        Set(try workers().compactMap { ($0["pid"] as? NSNumber)?.int32Value })
    }

    /// The agent's `GET /metrics` (Prometheus text).
    func metrics() throws -> String {
        let address = (f.read(f.stateDir + "/http.addr") ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        return try Fixture.run("/usr/bin/curl", ["-sS", "--max-time", "10", "http://\(address)/metrics"], timeout: 20).stdout
    }

    // MARK: Helpers

    /// Whether `pid` is a live process (not gone, not a zombie nobody reaped yet).
    static func isRunning(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(close, offsetBy: 2)]
        return state != "Z" && state != "X"
    }

    /// A TCP port on 127.0.0.1 nothing listens on right now, outside the ephemeral range (see LoopbackPort).
    static func freePort() throws -> Int { try LoopbackPort.free() }

    private func startRedis() throws {
        let port = try WorkerApp.freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/redis-server")
        process.arguments = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", f.scratch, "--protected-mode", "yes"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        redis = process
        redisPort = port
        let ready = f.waitUntil(seconds: 10) {
            (try? Fixture.run("/usr/bin/redis-cli", ["-p", String(port), "ping"], timeout: 5).stdout.contains("PONG")) == true
        }
        guard ready else { throw FixtureError("redis-server did not start on port \(port)") }
    }
}

/// The load generator (Support/loadgen.py) in the background until `finish()`.
final class LoadRun {
    let process = Process()
    let stopFile: String
    let outputFile: String

    struct Summary {
        var requests: Int
        var failed: Int
        var errors: [String]
        var releases: [String: Int]
        var retriedKeepAlive: Int
        var p50: Double?
        var p99: Double?
        /// Wall-clock times (seconds since 1970) each release last answered.
        var lastSeen: [String: Double] = [:]
    }

    /// `mode`: loadgen.py's client mix ("mixed", "keepalive-retry", "keepalive-noretry").
    init(port: Int, path: String = "/api/hello", threads: Int = 4, scratch: String, maxSeconds: Int = 240, mode: String = "mixed") throws {
        let id = UUID().uuidString
        stopFile = scratch + "/load-stop-\(id)"
        outputFile = scratch + "/load-\(id).json"
        _ = FileManager.default.createFile(atPath: outputFile, contents: nil)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [WorkerApp.packageRoot + "/Tests/EndToEndTests/Support/loadgen.py", "127.0.0.1", String(port), path,
                             String(threads), stopFile, String(maxSeconds), mode]
        process.standardOutput = FileHandle(forWritingAtPath: outputFile)
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    func finish() throws -> Summary {
        _ = FileManager.default.createFile(atPath: stopFile, contents: nil)
        let deadline = Date().addingTimeInterval(30)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        let data = FileManager.default.contents(atPath: outputFile) ?? Data()
        guard let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw FixtureError("the load generator printed no summary")
        }
        return Summary(requests: json["requests"] as? Int ?? 0, failed: json["failed"] as? Int ?? -1,
                       errors: json["errors"] as? [String] ?? [], releases: json["releases"] as? [String: Int] ?? [:],
                       retriedKeepAlive: json["retried_keepalive"] as? Int ?? 0,
                       p50: json["p50_ms"] as? Double, p99: json["p99_ms"] as? Double,
                       lastSeen: json["last_seen"] as? [String: Double] ?? [:])
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}
