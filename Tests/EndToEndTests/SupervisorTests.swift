import Foundation
import Testing

/// The supervisor end to end: the example Node app as workers of a running agent, on a real
/// loopback socket, under a load generator that counts every failed request.
@Suite(.serialized, .endToEnd)
struct SupervisorTests {
    @Test func tenDeploysUnderLoadFailNoRequestAndEndOnTheNewRelease() throws {
        let app = try WorkerApp(instances: 3)
        try app.start()
        var deployed = [try #require(app.f.current())]
        let load = try LoadRun(port: app.port, threads: 6, scratch: app.f.scratch)
        for version in 2...11 {
            let result = try app.deployNewVersion("v\(version)")
            #expect(result.status == 0, "deploy v\(version): \(result.output)")
            deployed.append(try #require(app.f.current()))
        }
        let summary = try load.finish()
        #expect(summary.failed == 0, "errors: \(summary.errors)")
        #expect(summary.requests > 500)
        // Every answer came from a release that was deployed (old or new), never anything else.
        #expect(Set(summary.releases.keys).isSubset(of: Set(deployed)), "\(summary.releases.keys.sorted()) vs \(deployed)")
        #expect(summary.releases.count >= 5, "answers came from \(summary.releases.count) releases")
        let workers = try app.workers()
        #expect(workers.count == 3)
        #expect(workers.allSatisfy { $0["release"] as? String == deployed.last && $0["state"] as? String == "ready" })
        // Each worker runs in its release's own directory, not through `current`.
        let releaseDir = app.f.appsRoot + "/demo/releases/\(deployed.last!)/backend"
        for pid in try app.workerPIDs() {
            #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/cwd")) == releaseDir)
        }
        // What an operator reads: the workers in `status`, their output in `logs`.
        let status = try app.f.slipway(["status"]).stdout
        #expect(status.contains("workers on 127.0.0.1:\(app.port)") && status.contains("SLOT  PID"), "\(status)")
        #expect(status.components(separatedBy: deployed.last! + "  ready").count - 1 == 3, "\(status)")
        let logs = try app.f.slipway(["logs", "demo", "-n", "4"]).stdout
        #expect(logs.split(separator: "\n").count == 4 && logs.contains("] "), "\(logs)")
        print("10 deploys under load: \(summary.requests) requests, \(summary.failed) failed, \(summary.retriedKeepAlive) keep-alive retries, p50 \(summary.p50 ?? 0) ms, p99 \(summary.p99 ?? 0) ms")
    }

    @Test func aReleaseWhoseWorkersCrashAtStartIsRolledBackWithoutLosingRequests() throws {
        let app = try WorkerApp(instances: 2)
        try app.start()
        let good = try #require(app.f.current())
        let goodPIDs = try app.workerPIDs()
        let load = try LoadRun(port: app.port, threads: 4, scratch: app.f.scratch)
        let server = try #require(app.f.read(app.f.sourceRepo + "/server/server.js"))
        let result = try app.deployNewVersion("broken", files: ["server/server.js": "process.exit(7);\n" + server])
        let summary = try load.finish()
        #expect(result.status != 0)
        #expect(summary.failed == 0, "errors: \(summary.errors)")
        #expect(Set(summary.releases.keys) == [good])
        #expect(app.f.current() == good)
        #expect(try app.workerPIDs() == goodPIDs, "\((try? app.workers()) ?? [])\n\(app.workerLog)")
        let status = try app.f.appStatus()
        #expect(status["condition"] as? String == "failed")
        let message = status["message"] as? String ?? ""
        #expect(message.contains("reload failed") && message.contains("exited with status 7") && message.contains("switched back to \(good)"), "\(message)")
        // The failed release is kept, marked failed, and not tried again by the next pass.
        let releases = app.f.releases()
        let broken = try #require(releases.last)
        #expect(broken != good)
        #expect(app.f.read(app.f.appsRoot + "/demo/releases/\(broken)/release.json")?.contains("\"failed\"") == true)
        let again = try app.f.slipway(["deploy", "--wait"], timeout: 60)
        #expect(again.status != 0)
        #expect(app.f.releases() == releases)
        #expect(app.f.current() == good)
    }

    @Test func minReadyKeepsTheOldWorkerServingAndAWorkerThatDiesMeanwhileFailsTheRolloutBeforeAnyOldOneStops() throws {
        let app = try WorkerApp(instances: 2)
        try app.commitManifest(instances: 2, minReady: "2s")
        try app.start()
        let load = try LoadRun(port: app.port, threads: 4, scratch: app.f.scratch)
        let table = TableWatcher(path: app.f.stateDir + "/workers/demo.json")
        let started = ContinuousClock.now
        let result = try app.deployNewVersion("v2")
        let took = ContinuousClock.now - started
        let seen = table.stop()
        #expect(result.status == 0, "\(result.output)")
        let good = try #require(app.f.current())
        // Each slot: the new worker ready, then 2 s beside the old one, then the old one stops.
        #expect(took >= .seconds(4), "the deploy took \(took)")
        let log = app.workerLog
        #expect(log.components(separatedBy: "(backend.ready.min_ready)").count - 1 == 2, "\(log)")
        // Status lists the new worker while it starts and while it serves beside the old one.
        #expect(seen.contains("0 starting \(good)") && seen.contains("1 starting \(good)"), "\(seen.sorted())")
        #expect(seen.contains("0 ready \(good) beside 0 ready") && seen.contains("1 ready \(good) beside 1 ready"), "\(seen.sorted())")
        let summary = try load.finish()
        #expect(summary.failed == 0, "errors: \(summary.errors)")
        #expect(summary.releases[good] ?? 0 > 0, "\(summary.releases)")
        let goodPIDs = try app.workerPIDs()

        // A release whose worker dies half a second after its first health check (the agent's,
        // right after READY=1): it fails inside min_ready, and no old worker has been stopped.
        let server = try #require(app.f.read(app.f.sourceRepo + "/server/server.js"))
        let dies = """
        const http = require("http");
        const emit = http.Server.prototype.emit;
        http.Server.prototype.emit = function (event, request, ...rest) {
          if (event === "request" && request.url === "/api/health") setTimeout(() => process.exit(5), 500);
          return emit.call(this, event, request, ...rest);
        };

        """
        /// Deploys `prelude` + the server: the deploy fails with `expected` in the status
        /// message, `current` stays on the good release and every good worker still runs.
        func expectFailsBeforeAnyOldWorkerStops(_ version: String, prelude: String, message expected: String) throws {
            let failed = try app.deployNewVersion(version, files: ["server/server.js": prelude + server])
            #expect(failed.status != 0)
            #expect(app.f.current() == good)
            #expect(try app.workerPIDs() == goodPIDs, "\((try? app.workers()) ?? [])\n\(app.workerLog)")
            let message = try app.f.appStatus()["message"] as? String ?? ""
            #expect(message.contains(expected), "\(message)")
        }
        try expectFailsBeforeAnyOldWorkerStops("dies", prelude: dies,
                                               message: "exited with status 5 within backend.ready.min_ready (2s) of being ready")

        // A release whose worker passes its first health check, answers 500 from 0.3 s to 1.6 s
        // after it, then recovers: healthy at the end of min_ready, but not throughout. The
        // check 1 s into the wait fails it, and again no old worker has been stopped.
        let flaky = """
        const http = require("http");
        const emit = http.Server.prototype.emit;
        let first = 0;
        http.Server.prototype.emit = function (event, request, response, ...rest) {
          if (event === "request" && request.url === "/api/health") {
            const since = Date.now() - (first ||= Date.now());
            if (since > 300 && since < 1600) {
              response.statusCode = 500;
              response.end("sick\\n");
              return true;
            }
          }
          return emit.call(this, event, request, response, ...rest);
        };

        """
        try expectFailsBeforeAnyOldWorkerStops("flaky", prelude: flaky, message: "failed its health check: GET /api/health answered 500 "
                                               + "on its own socket (fd 4) 1s into backend.ready.min_ready (2s)")
        #expect(try app.get("/api/hello").status == 200)
    }

    /// Reads a worker table every 50 ms until stopped (or for 3 minutes at most): per row `slot
    /// state release`, and for a row of a slot that also has a ready row of another release,
    /// `… beside <slot> ready`.
    private final class TableWatcher: @unchecked Sendable {
        private let lock = NSLock()
        private var seen: Set<String> = []
        private var running = true
        private let done = DispatchSemaphore(value: 0)

        init(path: String) {
            let deadline = Date() + 180
            DispatchQueue.global().async {
                while self.lock.withLock({ self.running }), Date() < deadline {
                    if let data = FileManager.default.contents(atPath: path),
                       let table = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                       let workers = table["workers"] as? [[String: Any]] {
                        let rows = workers.compactMap { row -> (slot: Int, state: String, release: String)? in
                            guard let slot = row["slot"] as? Int, let state = row["state"] as? String,
                                  let release = row["release"] as? String else { return nil }
                            return (slot, state, release)
                        }
                        var found: Set<String> = []
                        for row in rows {
                            found.insert("\(row.slot) \(row.state) \(row.release)")
                            if rows.contains(where: { $0.slot == row.slot && $0.state == "ready" && $0.release != row.release }) {
                                found.insert("\(row.slot) \(row.state) \(row.release) beside \(row.slot) ready")
                            }
                        }
                        self.lock.withLock { self.seen.formUnion(found) }
                    }
                    Thread.sleep(forTimeInterval: 0.05)
                }
                self.done.signal()
            }
        }

        func stop() -> Set<String> {
            lock.withLock { running = false }
            _ = done.wait(timeout: .now() + 10)
            return lock.withLock { seen }
        }
    }

    @Test func aWorkerThatIgnoresItsStopSignalIsKilledAfterTheTimeout() throws {
        let app = try WorkerApp(instances: 1, env: ["IGNORE_STOP": "1"])
        try app.commitManifest(instances: 1, backend: "", env: ["IGNORE_STOP": "1"])
        // A short stop timeout, written over the default one.
        let manifest = try #require(app.f.read(app.f.manifestsRepo + "/manifests/demo.yaml"))
        try app.f.commitManifest("demo.yaml", manifest.replacingOccurrences(of: "timeout: 5s", with: "timeout: 1500ms"))
        try app.start()
        let old = try #require(try app.workerPIDs().first)
        let started = Date()
        let reload = try app.f.slipway(["reload", "demo"], timeout: 60)
        #expect(reload.status == 0, "\(reload.output)")
        #expect(Date().timeIntervalSince(started) >= 1.5)
        #expect(!WorkerApp.isRunning(old), "the old worker \(old) still runs")
        let log = app.workerLog
        #expect(log.contains("[w0 \(old)] out: SIGINT: draining"))
        #expect(log.contains("[w0 \(old)] slipway: still running after 1500ms: SIGKILL"))
        #expect(log.contains("[w0 \(old)] slipway: exited: was killed by signal 9"))
        #expect(try app.get("/api/hello").status == 200)
        #expect(app.stop(), "the agent did not exit on SIGTERM")
    }

    @Test func anEnvChangeReloadsTheWorkersAndTheNewEnvIsServed() throws {
        let app = try WorkerApp(instances: 2, env: ["GREETING": "hello"])
        try app.start()
        #expect(try app.get("/api/hello").body.contains("\"greeting\":\"hello\""))
        // In the manifest: a new release is deployed with the new env.
        try app.commitManifest(instances: 2, env: ["GREETING": "bonjour"])
        #expect(try app.f.slipway(["deploy", "--wait"]).status == 0)
        for _ in 0..<6 { #expect(try app.get("/api/hello").body.contains("\"greeting\":\"bonjour\"")) }
        // In the host's env_file (no manifest change): the next pass reloads the workers.
        let release = try #require(app.f.current())
        try app.f.write("GREETING=\"from the env file\"\n", to: app.envDir + "/demo.env")
        try app.commitManifest(instances: 2, backend: "env_file: \(app.envDir)/demo.env", env: ["GREETING": "bonjour"])
        #expect(try app.f.slipway(["deploy", "--wait"]).status == 0)
        for _ in 0..<6 { #expect(try app.get("/api/hello").body.contains("\"greeting\":\"from the env file\"")) }
        try app.f.write("GREETING=edited on the host\n", to: app.envDir + "/demo.env")
        #expect(try app.f.slipway(["deploy", "--wait"]).status == 0)
        for _ in 0..<6 { #expect(try app.get("/api/hello").body.contains("\"greeting\":\"edited on the host\"")) }
        // The env_file needed no rebuild: same release, new workers.
        #expect(app.f.current() == release)
        // A value never reaches the status or the agent's log.
        #expect(!app.agentLog.contains("edited on the host"))
        #expect(try !app.f.slipway(["status", "--json"]).stdout.contains("edited on the host"))
    }

    @Test func aSessionMadeBeforeTenReloadsIsStillValidAfterThem() throws {
        let app = try WorkerApp(instances: 2, withRedis: true)
        try app.start()
        let created = try Fixture.run("/usr/bin/curl", ["-sS", "--max-time", "10", "-D", "-", "-H", "Content-Type: application/json",
                                                        "-d", "{\"user\":\"ada\"}", "http://127.0.0.1:\(app.port)/api/session"], timeout: 20)
        let cookie = try #require(created.stdout.replacingOccurrences(of: "\r", with: "").split(separator: "\n").first { $0.lowercased().hasPrefix("set-cookie:") }
            .flatMap { $0.split(separator: " ").dropFirst().first }.map { String($0.dropLast()) }, "\(created.output)")
        let pidsBefore = try app.workerPIDs()
        var seen: Set<Int32> = pidsBefore
        for _ in 0..<10 {
            let reload = try app.f.slipway(["reload", "demo"], timeout: 60)
            #expect(reload.status == 0, "\(reload.output)")
            seen.formUnion(try app.workerPIDs())
        }
        #expect(seen.count == 22, "each reload replaces both workers: \(seen.count) distinct pids")
        #expect(try app.workerPIDs().isDisjoint(with: pidsBefore))
        for _ in 0..<4 {
            let session = try app.get("/api/session", headers: ["Cookie: \(cookie)"])
            #expect(session.status == 200 && session.body.contains("\"user\":\"ada\""), "\(session)")
        }
    }

    @Test func aKilledWorkerIsRestartedAndACrashLoopBacksOff() throws {
        let app = try WorkerApp(instances: 2)
        // A worker that exits at once while the flag file exists.
        try app.commitManifest(instances: 2, backend: """
        restart:
          backoff: 100ms
          min_uptime: 1s
        """, env: ["CRASH_FLAG": app.f.scratch + "/crash"])
        let server = try #require(app.f.read(app.f.sourceRepo + "/server/server.js"))
        try app.f.commitSource(["server/server.js": """
        if (require("fs").existsSync(process.env.CRASH_FLAG)) { console.error("crash flag set"); process.exit(9); }
        """ + "\n" + server])
        try app.start()
        let before = try app.workerPIDs()
        #expect(before.count == 2)

        // SIGKILL one worker: a new one takes its slot, the other is untouched.
        let victim = try #require(before.sorted().first)
        kill(victim, SIGKILL)
        #expect(app.f.waitUntil(seconds: 10) { ((try? app.workerPIDs()) ?? []).subtracting(before).count == 1 && (try? app.workers().allSatisfy { $0["state"] as? String == "ready" }) == true })
        #expect(try app.get("/api/hello").status == 200)

        // A crash loop: restarts back off (100ms, 200ms, 400ms, …), and status says degraded.
        _ = FileManager.default.createFile(atPath: app.f.scratch + "/crash", contents: nil)
        let target = try #require(try app.workerPIDs().sorted().first)
        kill(target, SIGKILL)
        #expect(app.f.waitUntil(seconds: 15) { (try? app.f.appStatus()["condition"] as? String) == "degraded" })
        let message = try app.f.appStatus()["message"] as? String ?? ""
        #expect(message.contains("crash loop"), "\(message)")
        let restarts = app.workerLog.components(separatedBy: "; restart in ").count - 1
        #expect(restarts >= 3)
        #expect(app.workerLog.contains("restart in 100ms") && app.workerLog.contains("restart in 200ms") && app.workerLog.contains("restart in 400ms"))
        // No busy loop: within 3 more seconds at most a few more attempts (the delay keeps doubling).
        Thread.sleep(forTimeInterval: 3)
        let later = app.workerLog.components(separatedBy: "; restart in ").count - 1
        #expect(later - restarts <= 3, "\(later - restarts) restarts in 3 s")
        // The other worker kept serving all along.
        #expect(try app.get("/api/hello").status == 200)
        // A pass meanwhile leaves the crash loop to the backoff: no extra start, not "failed".
        let restartsBeforePass = app.workerLog.components(separatedBy: "slipway: started").count
        _ = try app.f.slipway(["deploy", "--wait"], timeout: 60)
        #expect(try app.f.appStatus()["condition"] as? String == "degraded")
        #expect(app.workerLog.components(separatedBy: "slipway: started").count - restartsBeforePass <= 1)
        // The metrics say the same.
        let metrics = try app.metrics()
        #expect(metrics.contains("slipway_app_degraded{app=\"demo\"} 1"), "\(metrics)")
        #expect(metrics.contains("slipway_worker_restarts_total{app=\"demo\",reason=\"crash\"}"))
        #expect(metrics.contains("slipway_workers{app=\"demo\",state=\"ready\"} 1"))

        // The flag goes, the worker comes back and stays up: degraded clears.
        unlink(app.f.scratch + "/crash")
        #expect(app.f.waitUntil(seconds: 30) { (try? app.f.appStatus()["condition"] as? String) == "converged" })
    }

    @Test func theAgentDrainsItsWorkersOnSIGTERMAndReplacesOrphansAfterAKill() throws {
        let app = try WorkerApp(instances: 2)
        try app.start()
        let first = try app.workerPIDs()
        // kill -9: the workers keep serving on the dead agent's socket…
        kill(app.agent.processIdentifier, SIGKILL)
        app.agent.waitUntilExit()
        #expect(try app.get("/api/hello").status == 200)
        // …and a new agent replaces them with its own, then stops the orphans.
        try app.start()
        #expect(app.f.waitUntil(seconds: 30) { first.allSatisfy { !WorkerApp.isRunning($0) } })
        let second = try app.workerPIDs()
        #expect(second.count == 2 && second.isDisjoint(with: first))
        // SIGTERM: every worker drains and exits before the agent does, within the stop timeout
        // (5 s), even with an event stream left open by a `slipway reload` that came before.
        #expect(try app.f.slipway(["reload", "demo"]).status == 0)
        let stopping = Date()
        #expect(app.stop(), "the agent did not exit on SIGTERM")
        #expect(Date().timeIntervalSince(stopping) < 7)
        #expect(second.allSatisfy { !WorkerApp.isRunning($0) })
        #expect(app.workerLog.contains("stopping all workers: the agent is stopping"))
    }

    /// A worker's STATUS= text is the app's: `slipway status` shows its escape sequences, never obeys them.
    @Test func aWorkersStatusTextWithEscapeSequencesIsShownEscaped() throws {
        let hostile = "\u{1B}]0;owned\u{07}\u{1B}[2Jserving"
        let app = try WorkerApp(instances: 1, env: ["READY_STATUS": hostile])
        try app.start()
        let status = try app.f.slipway(["status"])
        #expect(status.status == 0, "\(status.output)")
        #expect(status.stdout.contains("\\e]0;owned\\a\\e[2Jserving"), "\(status.stdout)")
        #expect(!status.stdout.contains("\u{1B}"), "an escape character reached the terminal")
        #expect(!status.stdout.contains("\u{07}"))
        #expect(app.stop(), "the agent did not exit on SIGTERM")
    }

    /// The API is the last service to stop: while workers drain after SIGTERM, `/healthz` still
    /// answers on TCP and `slipway status` (over the socket) says the agent is stopping.
    @Test func healthzAndStatusAnswerWhileTheWorkersDrain() throws {
        let app = try WorkerApp(instances: 1, env: ["IGNORE_STOP": "1"])
        try app.commitManifest(instances: 1, backend: "", env: ["IGNORE_STOP": "1"])
        let manifest = try #require(app.f.read(app.f.manifestsRepo + "/manifests/demo.yaml"))
        try app.f.commitManifest("demo.yaml", manifest.replacingOccurrences(of: "timeout: 5s", with: "timeout: 4s"))
        try app.start()
        let worker = try #require(try app.workerPIDs().first)
        let address = (app.f.read(app.f.stateDir + "/http.addr") ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        let stopping = Date()
        kill(app.agent.processIdentifier, SIGTERM)
        // The worker ignores its stop signal, so the drain lasts the whole 4 s stop timeout.
        var answered = 0
        var statusSaidStopping = false
        while Date().timeIntervalSince(stopping) < 2.5 && WorkerApp.isRunning(worker) {
            let health = try Fixture.run("/usr/bin/curl", ["-sS", "--max-time", "1", "http://\(address)/healthz"], timeout: 5)
            if health.status == 0 && health.stdout == "stopping\n" { answered += 1 }
            if !statusSaidStopping, let status = try? app.f.statusJSON() {
                statusSaidStopping = status["agentState"] as? String == "stopping"
            }
            usleep(200_000)
        }
        #expect(answered >= 3, "/healthz answered 'stopping' \(answered) times during the drain")
        #expect(statusSaidStopping, "slipway status did not say the agent is stopping")
        #expect(app.stop(), "the agent did not exit on SIGTERM")
        #expect(!WorkerApp.isRunning(worker))
        #expect(Date().timeIntervalSince(stopping) >= 3.5, "the worker's stop timeout was not waited for")
    }

    @Test func aPythonAppUnderGunicornTakesFD3AndReloadsWithoutLosingRequests() throws {
        let app = try WorkerApp(instances: 2)
        // Not the Node example: a WSGI app served by Debian's gunicorn, which takes fd 3 itself
        // when LISTEN_PID is its own pid (so this also proves the exec trampoline and setpriv).
        try app.f.commitSource(["app.py": """
        import os
        def app(environ, start_response):
            release = os.environ.get("SLIPWAY_RELEASE", "dev")
            start_response("200 OK", [("Content-Type", "text/plain"), ("X-Release", release)])
            return [("served by gunicorn %d of %s\\n" % (os.getpid(), release)).encode()]
        """])
        try app.f.commitManifest("demo.yaml", """
        app: demo
        source: {repo: \(app.f.sourceRepo), ref: main}
        backend:
          command: gunicorn --workers 2 --graceful-timeout 5 app:app
          instances: 2
          listen: 127.0.0.1:\(app.port)
          health: {path: /}
          stop: {signal: SIGTERM, timeout: 6s}
        """)
        app.healthPath = "/"
        try app.start()
        let first = try app.get("/")
        #expect(first.status == 200 && first.body.contains("served by gunicorn"), "\(first)\n\(app.workerLog)")
        #expect(app.workerLog.contains("Listening at: http://127.0.0.1:\(app.port)"))
        var deployed = [try #require(app.f.current())]
        let load = try LoadRun(port: app.port, path: "/", threads: 4, scratch: app.f.scratch)
        for version in 2...4 {
            let result = try app.deployNewVersion("v\(version)")
            #expect(result.status == 0, "\(result.output)")
            deployed.append(try #require(app.f.current()))
        }
        let summary = try load.finish()
        #expect(summary.failed == 0, "errors: \(summary.errors)")
        #expect(Set(summary.releases.keys).isSubset(of: Set(deployed)))
        #expect(try app.get("/").release == deployed.last)
        #expect(app.stop(), "the agent did not exit on SIGTERM")
    }

    @Test func aWorkerAboveMaxMemoryIsReplacedGracefully() throws {
        // The Node app holds about 50 MB; a 20M limit makes every worker too big once it has
        // been up for min_uptime (1 s): each is replaced, the new one ready first.
        let app = try WorkerApp(instances: 2, backend: "max_memory: 20M\nrestart: {min_uptime: 1s}")
        try app.start()
        let before = try app.workerPIDs()
        let load = try LoadRun(port: app.port, threads: 4, scratch: app.f.scratch)
        // Both of the first workers replaced, and four replacements begun. (A replacement that
        // fails, say its health check timing out on a loaded host, leaves the old worker serving
        // and is tried at the next sample: counting the lines alone took that for a bug.)
        #expect(app.f.waitUntil(seconds: 60) {
            app.workerLog.components(separatedBy: "is above max_memory 20M: replacing it").count - 1 >= 4
                && ((try? app.workerPIDs()) ?? before).isDisjoint(with: before)
        }, "before \(before.sorted()), now \((try? app.workers()) ?? [])\n\(app.workerLog.suffix(4000))")
        let summary = try load.finish()
        #expect(summary.failed == 0, "errors: \(summary.errors)")
        #expect(try app.metrics().contains("slipway_worker_restarts_total{app=\"demo\",reason=\"max_memory\"}"))
        // status reports the RSS (sampled every 3 s; a worker started since has none yet).
        #expect(app.f.waitUntil(seconds: 10) {
            ((try? app.workers()) ?? []).contains { (($0["rssBytes"] as? NSNumber)?.intValue ?? 0) > 20 << 20 }
        })
    }

    /// A worker replaced for its memory is shown as draining while it stops, as a rollout's old
    /// worker is: it had left its slot to the new one, and `slipway status` still showed it ready
    /// in its slot, beside the new one starting, for as long as its stop took (2 s here: the tiny
    /// worker, made slow to stop).
    @Test func aWorkerReplacedForItsMemoryIsShownDrainingWhileItStops() throws {
        let app = try TinyApp.make(instances: 1, keep: 2)
        try app.f.commitSource(["slow.py": "import time\nexec(open('worker.py').read().replace('stop.wait()', 'stop.wait(); time.sleep(2)'))\n"],
                               message: "a worker that takes 2 s to stop")
        try app.f.commitManifest("demo.yaml", """
        app: demo
        source: {repo: \(app.f.sourceRepo), ref: main}
        backend:
          command: /usr/bin/python3 -u slow.py
          instances: 1
          listen: 127.0.0.1:\(app.port)
          ready: {notify: true, timeout: 10s}
          max_memory: 5M
          restart: {min_uptime: 1s}
          stop: {signal: SIGTERM, timeout: 5s}
        """)
        try app.start()
        let first = try app.workerPIDs()
        var seen: [String] = []
        #expect(app.f.waitUntil(seconds: 20) {
            let workers = (try? app.workers()) ?? []
            seen = workers.map { "\($0["pid"] ?? "-") \($0["state"] ?? "-")" }
            return workers.contains { first.contains(($0["pid"] as? NSNumber)?.int32Value ?? 0) && $0["state"] as? String == "draining" }
        }, "the replaced worker was never shown draining; last seen \(seen)\n\(app.workerLog.suffix(2000))")
        #expect(app.workerLog.contains("is above max_memory 5M: replacing it"))
        #expect(app.stop())
    }
}
