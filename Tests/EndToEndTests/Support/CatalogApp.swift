import Foundation

/// The catalog example (examples/catalog: gunicorn + psycopg2 on a real PostgreSQL, with
/// expand/contract migrations) deployed by one agent per host, all on this machine: each host
/// has its own config, apps root and state dir, and they share the manifests repo and the
/// database. Version 1 of the source reads items.name; version 2 is the example as committed
/// (migration 002 renames name to title).
final class CatalogApp {
    let f: Fixture
    let postgres: TestPostgres
    let port: Int
    let hosts: [Host]
    var envDir: String { f.root + "/env" }
    var envFile: String { envDir + "/catalog.env" }
    static let example = WorkerApp.packageRoot + "/examples/catalog"

    /// One agent: `web-1` uses the fixture's own config, others get theirs beside it.
    final class Host {
        let name: String
        let root: String
        var config: String { root + "/agent.yaml" }
        var appsRoot: String { root + "/apps" }
        var stateDir: String { root + "/state" }
        var log: String { root + "/agent.log" }
        var agent: AgentProcess?

        init(name: String, root: String) {
            self.name = name
            self.root = root
        }

        @discardableResult
        func slipway(_ arguments: [String], timeout: Double = 180) throws -> Fixture.RunResult {
            try Fixture.run(Fixture.binary, arguments + ["--config", config], timeout: timeout)
        }

        func status() throws -> [String: Any] {
            let result = try slipway(["status", "--json"])
            let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
            let apps = object?["apps"] as? [[String: Any]] ?? []
            guard let status = apps.first(where: { $0["app"] as? String == "catalog" }) else {
                throw FixtureError("no status for catalog on \(name): \(result.output)")
            }
            return status
        }

        func current() -> String? {
            (try? FileManager.default.destinationOfSymbolicLink(atPath: appsRoot + "/catalog/current")).map { ($0 as NSString).lastPathComponent }
        }

        func releaseRecord(_ id: String) -> [String: Any]? {
            let data = FileManager.default.contents(atPath: "\(appsRoot)/catalog/releases/\(id)/release.json") ?? Data()
            return try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        }

        func workers() throws -> [[String: Any]] {
            ((try status()["workers"] as? [String: Any])?["workers"] as? [[String: Any]]) ?? []
        }

        var agentLog: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        var workerLog: String { (try? String(contentsOfFile: stateDir + "/logs/catalog/workers.log", encoding: .utf8)) ?? "" }
    }

    init(hosts names: [String] = ["web-1"]) throws {
        f = try Fixture(name: "catalog")
        port = try WorkerApp.freePort()
        let root = f.root
        hosts = names.map { Host(name: $0, root: "\(root)/\($0)") }
        postgres = try TestPostgres(root: f.root)
        try FileManager.default.createDirectory(atPath: envDir, withIntermediateDirectories: true)
        try postgres.start()
        try postgres.psql("CREATE ROLE catalog LOGIN")
        try postgres.psql("CREATE DATABASE catalog OWNER catalog")
        // The secret half of the app's environment: workers and migrate steps read it, builds do not.
        try f.write("DATABASE_URL=\(postgres.url(database: "catalog", user: "catalog"))\n", to: envFile)
        for host in hosts {
            try FileManager.default.createDirectory(atPath: host.root, withIntermediateDirectories: true)
            try f.write("""
            host: \(host.name)
            manifests:
              repo: \(f.manifestsRepo)
            apps_root: \(host.appsRoot)
            state_dir: \(host.stateDir)
            apps_user: \(Fixture.appsUser)
            \(f.localRoots)
            env_dir: \(envDir)
            poll_interval: \(names.count > 1 ? "1s" : "1h")
            listen: 127.0.0.1:0
            """, to: host.config)
        }
        try FileManager.default.removeItem(atPath: f.sourceRepo)
        try FileManager.default.copyItem(atPath: Self.example, toPath: f.sourceRepo)
        try FileManager.default.removeItem(atPath: f.sourceRepo + "/manifest.yaml.in")
        try f.git(["init", "-q", "-b", "main", f.sourceRepo])
        try commitVersion1()
    }

    deinit {
        hosts.forEach { $0.agent?.stop() }
        postgres.stop()
    }

    /// Version 1: only migration 001, and the app reads `name`.
    func commitVersion1() throws {
        for name in ["002_title.expand.sql", "002_title.contract.sql"] {
            try? FileManager.default.removeItem(atPath: f.sourceRepo + "/server/migrations/" + name)
        }
        let app = try String(contentsOfFile: Self.example + "/server/app.py", encoding: .utf8)
        try f.commitSource(["server/app.py": app.replacingOccurrences(of: "COLUMN = \"title\"", with: "COLUMN = \"name\"")], message: "v1")
    }

    /// Version 2: the example as committed; `expandPrefix` is put before migration 002's expand SQL.
    func commitVersion2(expandPrefix: String = "") throws {
        var files: [String: String] = [:]
        for name in ["app.py", "migrations/002_title.expand.sql", "migrations/002_title.contract.sql"] {
            files["server/" + name] = try String(contentsOfFile: Self.example + "/server/" + name, encoding: .utf8)
        }
        files["server/migrations/002_title.expand.sql"] = expandPrefix + files["server/migrations/002_title.expand.sql"]!
        try f.commitSource(files, message: "v2")
    }

    /// The example's manifest, filled in; `listen` replaces the TCP listener, `migrate` lines are
    /// appended to its migrate section.
    func commitManifest(listen: String? = nil, migrate: [String] = []) throws {
        var text = try String(contentsOfFile: Self.example + "/manifest.yaml.in", encoding: .utf8)
            .replacingOccurrences(of: "@SOURCE_REPO@", with: f.sourceRepo)
            .replacingOccurrences(of: "@ENV_FILE@", with: envFile)
            .replacingOccurrences(of: "@PORT@", with: String(port))
        if let listen { text = text.replacingOccurrences(of: "127.0.0.1:\(port)", with: listen) }
        text += migrate.map { "  " + $0 + "\n" }.joined()
        try f.commitManifest("catalog.yaml", text)
    }

    func start(_ host: Host) throws {
        host.agent = try AgentProcess(config: host.config, log: host.log)
    }

    /// Starts every host's agent not yet running and waits until each has its current release
    /// and ready workers.
    func startAll(timeout: Double = 120) throws {
        for host in hosts where host.agent?.process.isRunning != true { try start(host) }
        for host in hosts {
            let up = f.waitUntil(seconds: timeout) {
                guard host.current() != nil, let workers = try? host.workers() else { return false }
                return workers.count == 2 && workers.allSatisfy { $0["state"] as? String == "ready" }
            }
            guard up else { throw FixtureError("catalog did not come up on \(host.name): \(host.agentLog)\n\(host.workerLog)") }
        }
    }

    /// GET on the TCP listener: status, X-Release, body.
    func get(_ path: String) throws -> (status: Int, release: String, body: String) {
        let result = try Fixture.run("/usr/bin/curl", ["-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code} %header{x-release}",
                                                      "http://127.0.0.1:\(port)\(path)"], timeout: 20)
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        let last = (lines.last ?? "").split(separator: " ", maxSplits: 1)
        return (Int(last.first ?? "") ?? 0, last.count > 1 ? String(last[1]) : "", lines.dropLast().joined(separator: "\n"))
    }

    /// `schema_migrations` as name → applied_at (milliseconds since the epoch).
    func appliedMigrations() throws -> [String: Int64] {
        let rows = try postgres.psql("SELECT name, (extract(epoch FROM applied_at) * 1000)::bigint FROM schema_migrations", database: "catalog")
        var result: [String: Int64] = [:]
        for row in rows.split(separator: "\n") {
            let parts = row.split(separator: "|")
            if parts.count == 2, let at = Int64(parts[1]) { result[String(parts[0])] = at }
        }
        return result
    }

    func columns() throws -> Set<String> {
        Set(try postgres.psql("SELECT column_name FROM information_schema.columns WHERE table_name = 'items'", database: "catalog")
            .split(separator: "\n").map(String.init))
    }
}
