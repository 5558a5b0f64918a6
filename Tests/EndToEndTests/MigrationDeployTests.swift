import Foundation
import Testing

/// Expand/contract migrations as deploy stages, against a real PostgreSQL and the catalog
/// example (gunicorn + psycopg2): its v2 renames items.name to items.title in two steps.
@Suite(.serialized, .endToEnd)
struct MigrationDeployTests {
    static func millis(_ iso: Any?) -> Int64? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return (iso as? String).flatMap { formatter.date(from: $0) }.map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) }
    }

    /// `stage` → (started, finished) in ms, from `status --json`'s last deploy.
    static func stages(_ status: [String: Any]) -> [String: (start: Int64, end: Int64)] {
        var result: [String: (Int64, Int64)] = [:]
        for stage in ((status["lastDeploy"] as? [String: Any])?["stages"] as? [[String: Any]]) ?? [] {
            guard let name = stage["stage"] as? String, let start = millis(stage["startedAt"]),
                  let ms = (stage["milliseconds"] as? NSNumber)?.int64Value else { continue }
            result[name] = (start, start + ms)
        }
        return result
    }

    @Test func aColumnRenameShipsAsExpandSwitchContractWithNoErrorsUnderLoad() throws {
        let app = try CatalogApp()
        try app.commitManifest()
        try app.startAll()
        let web1 = app.hosts[0]
        let v1 = try #require(web1.current())
        #expect(try app.columns() == ["id", "name"])
        #expect(try app.get("/api/items").body.contains("\"name\": \"anchor\""))

        let load = try LoadRun(port: app.port, path: "/api/items", threads: 4, scratch: app.f.scratch)
        try app.commitVersion2()
        let deploy = try web1.slipway(["deploy", "catalog", "--wait"])
        let summary = try load.finish()
        #expect(deploy.status == 0, "\(deploy.output)\n\(web1.agentLog)")
        let v2 = try #require(web1.current())
        #expect(v2 != v1)
        #expect(summary.failed == 0, "errors: \(summary.errors)")
        #expect(Set(summary.releases.keys).isSubset(of: [v1, v2]) && (summary.releases[v2] ?? 0) > 0, "\(summary.releases)")
        print("migration deploy under load: \(summary.requests) requests, \(summary.failed) failed, by release \(summary.releases)")
        for stage in ["expand", "switch", "contract"] {
            #expect(deploy.output.contains(stage), "deploy --wait names the \(stage) stage: \(deploy.output)")
        }

        // Expand before any v2 worker started; contract only after verify passed (every worker on v2).
        let applied = try app.appliedMigrations()
        let expanded = try #require(applied["002_title.expand"])
        let contracted = try #require(applied["002_title.contract"])
        let workers = try web1.workers()
        #expect(workers.count == 2 && workers.allSatisfy { $0["release"] as? String == v2 })
        let started = workers.compactMap { Self.millis($0["startedAt"]) }
        #expect(started.count == 2 && started.allSatisfy { $0 > expanded }, "expand at \(expanded), v2 workers started at \(started)")
        let stages = Self.stages(try web1.status())
        let verify = try #require(stages["verify"])
        let switched = try #require(stages["switch"])
        #expect(expanded <= switched.start, "expand at \(expanded), switch at \(switched.start)")
        #expect(contracted >= verify.end, "contract at \(contracted), verify done at \(verify.end)")
        #expect(try app.columns() == ["id", "title"])
        #expect(try app.get("/api/items").body.contains("\"title\": \"anchor\""))
        let record = try #require(web1.releaseRecord(v2))
        #expect(record["result"] as? String == "succeeded" && record["expandedAt"] != nil && record["contractedAt"] != nil)
        let buildLog = (try? String(contentsOfFile: "\(web1.stateDir)/logs/catalog/\(v2).build.log", encoding: .utf8)) ?? ""
        #expect(buildLog.contains("applying 002_title.expand") && buildLog.contains("applying 002_title.contract"), "\(buildLog)")
        #expect(try web1.slipway(["releases", "catalog"]).stdout.contains("contracted"))

        // v1 reads the dropped column: a rollback to it is refused, current stays.
        let rollback = try web1.slipway(["rollback", "catalog"])
        #expect(rollback.status != 0 && rollback.output.contains("contract step changed the schema") && rollback.output.contains("--force"),
                "\(rollback.output)")
        #expect(web1.current() == v2)
        #expect(try app.get("/api/items").status == 200)
        #expect(web1.agent?.stop() == true)
    }

    @Test func aFailingExpandStopsBeforeTheSwitchAndIsNotRetriedUntilTheSourceChanges() throws {
        let app = try CatalogApp()
        try app.commitManifest()
        try app.startAll()
        let web1 = app.hosts[0]
        let v1 = try #require(web1.current())
        let pids = Set(try web1.workers().compactMap { ($0["pid"] as? NSNumber)?.int32Value })

        // A classic mistake: a NOT NULL column without a default on a table that has rows.
        let load = try LoadRun(port: app.port, path: "/api/items", threads: 2, scratch: app.f.scratch)
        try app.commitVersion2(expandPrefix: "ALTER TABLE items ADD COLUMN price integer NOT NULL;\n")
        let deploy = try web1.slipway(["deploy", "catalog", "--wait"])
        #expect(deploy.status != 0, "\(deploy.output)")
        #expect(deploy.output.contains("expand"), "\(deploy.output)")
        #expect(web1.current() == v1)
        #expect(Set(try web1.workers().compactMap { ($0["pid"] as? NSNumber)?.int32Value }) == pids, "the v1 workers kept serving")
        let status = try web1.status()
        #expect(status["condition"] as? String == "failed")
        let message = status["message"] as? String ?? ""
        #expect(message.contains("expand failed") && message.contains("contains null values") && message.contains("untouched"), "\(message)")
        // The release was published for its expand, and marked failed: never switched to.
        let failed = try #require(FileManager.default.contentsOfDirectory(atPath: web1.appsRoot + "/catalog/releases").first { $0 != v1 })
        let record = try #require(web1.releaseRecord(failed))
        #expect(record["result"] as? String == "failed" && (record["failure"] as? String ?? "").contains("expand failed"))
        #expect(try app.columns() == ["id", "name"], "the failed expand's transaction left nothing behind")
        let buildLog = try web1.slipway(["logs", "catalog", "--build"])
        #expect(buildLog.status == 0 && buildLog.stdout.contains("contains null values") && buildLog.stdout.contains("==> expand"),
                "\(buildLog.output)")

        // No hot retry: another pass holds the failure, builds nothing.
        let logs = try FileManager.default.contentsOfDirectory(atPath: web1.stateDir + "/logs/catalog").filter { $0.hasSuffix(".build.log") }
        let again = try web1.slipway(["deploy", "--wait"])
        #expect(again.status != 0 && again.output.contains("not retried until the manifest or source changes"), "\(again.output)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: web1.stateDir + "/logs/catalog").filter { $0.hasSuffix(".build.log") } == logs)
        let summary = try load.finish()
        #expect(summary.failed == 0 && summary.releases.keys.allSatisfy { $0 == v1 }, "errors: \(summary.errors) \(summary.releases)")

        // The fix is a new source commit: it deploys.
        try app.commitVersion2(expandPrefix: "ALTER TABLE items ADD COLUMN price integer NOT NULL DEFAULT 0;\n")
        let fixed = try web1.slipway(["deploy", "catalog", "--wait"])
        #expect(fixed.status == 0, "\(fixed.output)\n\(web1.agentLog)")
        #expect(try app.columns() == ["id", "title", "price"])
        #expect(try web1.status()["condition"] as? String == "converged")
        #expect(web1.agent?.stop() == true)
    }

    @Test func aFailingContractLeavesTheNewReleaseLiveAndDegradedAndIsRetriedNextPass() throws {
        let app = try CatalogApp()
        try app.commitManifest()
        try app.startAll()
        let web1 = app.hosts[0]
        let v1 = try #require(web1.current())
        // Something else still reads items.name: the contract's DROP COLUMN fails.
        try app.postgres.psql("CREATE VIEW legacy_names AS SELECT name FROM items", database: "catalog")
        try app.commitVersion2()
        let deploy = try web1.slipway(["deploy", "catalog", "--wait"])
        #expect(deploy.status != 0, "a degraded app is not a clean deploy: \(deploy.output)")
        let v2 = try #require(web1.current())
        #expect(v2 != v1)
        #expect(try app.get("/api/items").release == v2)
        var status = try web1.status()
        #expect(status["condition"] as? String == "degraded")
        let message = status["message"] as? String ?? ""
        #expect(message.contains("contract failed") && message.contains("depend on it") && message.contains("stays live"), "\(message)")
        #expect(try app.columns() == ["id", "name", "title"])
        #expect(web1.releaseRecord(v2)?["contractedAt"] == nil)
        // Still failing: another pass retries and stays degraded.
        _ = try web1.slipway(["deploy", "--wait"])
        #expect(try web1.status()["condition"] as? String == "degraded")

        try app.postgres.psql("DROP VIEW legacy_names", database: "catalog")
        let retried = try web1.slipway(["deploy", "--wait"])
        #expect(retried.status == 0, "\(retried.output)\n\(web1.agentLog)")
        status = try web1.status()
        #expect(status["condition"] as? String == "converged", "\(status)")
        #expect(web1.current() == v2)
        #expect(try app.columns() == ["id", "title"])
        #expect(web1.releaseRecord(v2)?["contractedAt"] != nil)
        #expect(web1.agentLog.contains("running the contract step of \(v2) again"))
        #expect(web1.agent?.stop() == true)
    }

    @Test func anAgentKilledDuringExpandNeverSwitchesToThatReleaseAndConvergesOnRestart() throws {
        let app = try CatalogApp()
        try app.commitManifest()
        try app.startAll()
        let web1 = app.hosts[0]
        let v1 = try #require(web1.current())
        try app.commitVersion2(expandPrefix: "SELECT pg_sleep(5);\n")
        _ = try web1.slipway(["deploy", "catalog"])
        let logs = web1.stateDir + "/logs/catalog"
        let expanding = app.f.waitUntil(seconds: 60) {
            ((try? FileManager.default.contentsOfDirectory(atPath: logs)) ?? []).contains { name in
                name.hasSuffix(".build.log") && !name.hasPrefix(v1)
                    && ((try? String(contentsOfFile: "\(logs)/\(name)", encoding: .utf8)) ?? "").contains("applying 002_title.expand")
            }
        }
        #expect(expanding, "\(web1.agentLog)")
        let agent = try #require(web1.agent)
        kill(agent.process.processIdentifier, SIGKILL)
        agent.process.waitUntilExit()
        let pending = try #require(try FileManager.default.contentsOfDirectory(atPath: web1.appsRoot + "/catalog/releases").first { $0 != v1 })
        #expect(web1.releaseRecord(pending)?["result"] as? String == "pending")
        #expect(web1.current() == v1)
        #expect(try app.get("/api/items").release == v1, "the v1 workers outlive the agent")

        // The next agent stops the orphaned step, builds anew, expands (the lock and the record make
        // a second run harmless), switches and contracts.
        try app.start(web1)
        let converged = app.f.waitUntil(seconds: 120) {
            guard let current = web1.current(), current != v1, web1.releaseRecord(current)?["contractedAt"] != nil else { return false }
            return (try? web1.status()["condition"] as? String) == "converged"
        }
        #expect(converged, "\(web1.agentLog)")
        let v2 = try #require(web1.current())
        #expect(v2 != pending, "the release whose expand was cut short is never switched to")
        #expect(web1.releaseRecord(pending)?["result"] as? String == "pending")
        #expect(try app.postgres.psql("SELECT count(*) FROM schema_migrations WHERE name LIKE '002%'", database: "catalog") == "2",
                "\((try? app.appliedMigrations()) ?? [:]) \(web1.agentLog)")
        #expect(try app.columns() == ["id", "title"])
        #expect(try app.get("/api/items").release == v2)
        #expect(web1.agent?.stop() == true)
    }

    @Test func aHostLeftOutOfMigrateHostsSwitchesOnlyOnceTheExpandIsDone() throws {
        let app = try CatalogApp(hosts: ["web-1", "web-2"])
        // Two agents on one machine: a unix listener each (inside each host's apps root).
        try app.commitManifest(listen: "unix:run/catalog.sock", migrate: ["hosts: [web-1]", "check: ./migrate.sh check"])
        let (web1, web2) = (app.hosts[0], app.hosts[1])
        // web-2 first: it cannot switch until web-1 has run 001.
        try app.start(web2)
        usleep(3_000_000)
        #expect(web2.current() == nil, "web-2 switched before any expand ran: \(web2.agentLog)")
        try app.startAll()
        let firstWait = Self.stages(try web2.status())["expand"].map { $0.end - $0.start }

        // v2's expand takes 3 s on web-1; web-2 must wait for it.
        let (v1a, v1b) = (web1.current(), web2.current())
        try app.commitVersion2(expandPrefix: "SELECT pg_sleep(3);\n")
        let moved = app.f.waitUntil(seconds: 180) {
            web1.current() != v1a && web2.current() != v1b
                && ((try? web2.workers()) ?? []).count == 2 && ((try? web2.workers()) ?? []).allSatisfy { $0["release"] as? String == web2.current() && $0["state"] as? String == "ready" }
        }
        #expect(moved, "\(web1.agentLog)\n\(web2.agentLog)")
        let applied = try app.appliedMigrations()
        let expanded = try #require(applied["002_title.expand"])
        let stages2 = Self.stages(try web2.status())
        let wait = try #require(stages2["expand"])
        let switched = try #require(stages2["switch"])
        #expect(switched.start >= expanded, "web-2 switched at \(switched.start), before the expand at \(expanded)")
        #expect(stages2["contract"] == nil, "only web-1 contracts")
        let started = try web2.workers().compactMap { Self.millis($0["startedAt"]) }
        #expect(started.allSatisfy { $0 > expanded })
        let web2Log = (try? String(contentsOfFile: "\(web2.stateDir)/logs/catalog/\(web2.current() ?? "").build.log", encoding: .utf8)) ?? ""
        #expect(web2Log.contains("==> check passed on attempt"), "\(web2Log)")
        #expect(!web2Log.contains("applying"), "web-2 ran no migration itself: \(web2Log)")
        #expect(web2.releaseRecord(web2.current() ?? "")?["contractedAt"] != nil, "web-2 keeps the contract boundary for rollbacks")
        let stages1 = Self.stages(try web1.status())
        #expect(stages1["contract"] != nil)
        print("web-2 waited \(firstWait.map(String.init) ?? "?") ms for web-1's first expand and \(wait.end - wait.start) ms for v2's "
              + "(web-1's expand stage took \(stages1["expand"].map { $0.end - $0.start } ?? -1) ms); web-2 switched "
            + "\(switched.start - expanded) ms after the expand was recorded")
        #expect(web1.agent?.stop() == true)
        #expect(web2.agent?.stop() == true)
    }
}
