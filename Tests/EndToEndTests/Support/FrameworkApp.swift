import Foundation
import Testing

/// An app written as a framework's own docs write it, deployed by a running agent as workers
/// on a free loopback port (docs/frameworks.md's recipes): its files, its backend section, and
/// optionally nginx in front (`/api/` proxied to the workers).
final class FrameworkApp {
    let f: Fixture
    let port: Int
    var nginx: TestNginx?
    private var agentProcess: AgentProcess?
    var healthPath = "/api/hello"
    var instances: Int
    var agentLog: String { f.read(f.root + "/agent.log") ?? "" }
    var workerLog: String { f.read(f.stateDir + "/logs/demo/workers.log") ?? "" }

    init(files: [String: String], executable: Set<String> = [], backend: String, instances: Int = 2,
         env: [String: String] = [:], withNginx: Bool = false) throws {
        f = try Fixture(name: "framework")
        port = try WorkerApp.freePort()
        self.instances = instances
        if withNginx {
            nginx = try TestNginx(root: f.root)
            try nginx?.start()
        }
        try f.commitSource(files.merging(["VERSION": "v1"]) { $1 }, message: "v1", executable: executable)
        try f.writeAgentConfig("poll_interval: 1h\nlisten: 127.0.0.1:0\n" + (nginx?.agentConfig ?? ""))
        try commitManifest(backend: backend, env: env)
    }

    deinit {
        agentProcess?.stop()
        nginx?.stop()
    }

    func commitManifest(backend: String, env: [String: String] = [:]) throws {
        let envLines = env.sorted { $0.key < $1.key }.map { "  \($0.key): \(Fixture.yamlQuoted($0.value))" }.joined(separator: "\n")
        let frontend = nginx.map {
            """
            frontend:
              build: "mkdir -p dist && cp VERSION dist/index.html"
              output: dist
              serve:
                server_name: localhost
                listen: 127.0.0.1:\($0.port)
                api: {path: /api/}
            """
        } ?? ""
        try f.commitManifest("demo.yaml", """
        app: demo
        source:
          repo: \(f.sourceRepo)
          ref: main
        releases:
          keep: 3
        \(env.isEmpty ? "" : "env:\n" + envLines)
        \(frontend)
        backend:
          listen: 127.0.0.1:\(port)
          instances: \(instances)
        \(backend.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
        """)
    }

    /// Starts the agent and waits until every worker is ready and the app answers (through
    /// nginx too, when there is one).
    func start(timeout: Double = 90) throws {
        try startAgent()
        let up = f.waitUntil(seconds: timeout) {
            guard (try? self.get(self.healthPath).status) == 200, let workers = try? self.workers() else { return false }
            return workers.count == self.instances && workers.allSatisfy { $0["state"] as? String == "ready" }
        }
        guard up else { throw FixtureError("the app did not come up:\n\(agentLog)\n\(workerLog)") }
        if let nginx, !f.waitUntil(seconds: 30, { (try? nginx.get(self.healthPath).status) == 200 }) {
            throw FixtureError("nginx does not serve the app: \(agentLog)")
        }
    }

    /// Starts the agent and returns at once.
    func startAgent() throws {
        agentProcess = try AgentProcess(config: f.configPath, log: f.root + "/agent.log")
    }

    /// A new source commit (VERSION changed) and a pass that deploys it, followed to the end.
    @discardableResult
    func deploy(_ version: String, files: [String: String] = [:]) throws -> Fixture.RunResult {
        try f.commitSource(files.merging(["VERSION": version]) { $1 }, message: version)
        return try f.slipway(["deploy", "demo", "--wait"], timeout: 180)
    }

    func get(_ path: String, port: Int? = nil) throws -> (status: Int, body: String) {
        let result = try Fixture.run("/usr/bin/curl", ["-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}",
                                                        "http://127.0.0.1:\(port ?? self.port)\(path)"], timeout: 20)
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
    }

    func workers() throws -> [[String: Any]] {
        let table = try f.appStatus()["workers"] as? [String: Any]
        return table?["workers"] as? [[String: Any]] ?? []
    }

    /// Load from the three clients of the matrix while `deploys` new versions are deployed:
    /// a keep-alive client that retries once on a fresh connection, one that never retries,
    /// and (with nginx) the mixed client through nginx.
    struct Matrix {
        var retrying: LoadRun.Summary
        var nonRetrying: LoadRun.Summary
        var viaNginx: LoadRun.Summary?
        /// One keep-alive client after the deploys (set by the caller).
        var steady: LoadRun.Summary?
    }

    func deploysUnderLoad(_ count: Int, path: String = "/api/hello", threads: Int = 2) throws -> Matrix {
        let retrying = try LoadRun(port: port, path: path, threads: threads, scratch: f.scratch, mode: "keepalive-retry")
        let nonRetrying = try LoadRun(port: port, path: path, threads: threads, scratch: f.scratch, mode: "keepalive-noretry")
        let proxied = try nginx.map { try LoadRun(port: $0.port, path: path, threads: threads, scratch: f.scratch) }
        usleep(500_000)
        for index in 1...count {
            let result = try deploy("v\(index + 1)")
            guard result.status == 0 else { throw FixtureError("deploy v\(index + 1) failed: \(result.output)\n\(workerLog)") }
        }
        usleep(500_000)
        return Matrix(retrying: try retrying.finish(), nonRetrying: try nonRetrying.finish(), viaNginx: try proxied?.finish())
    }
}

extension Fixture {
    /// An agent config for this sandbox's repos and directories, plus `extra` lines.
    func writeAgentConfig(_ extra: String) throws {
        try write("""
        host: web-1
        manifests:
          repo: \(manifestsRepo)
        apps_root: \(appsRoot)
        state_dir: \(stateDir)
        apps_user: \(Fixture.appsUser)
        \(localRoots)

        """ + extra + "\n", to: configPath)
    }
}

extension LoadRun.Summary {
    /// One row of the report: failures, requests, latency.
    var line: String {
        "\(failed) failed of \(requests) (retried \(retriedKeepAlive)), p50 \(p50.map { "\($0) ms" } ?? "-"), p99 \(p99.map { "\($0) ms" } ?? "-")"
            + (errors.isEmpty ? "" : "; first errors: \(errors.prefix(3))")
    }
}
