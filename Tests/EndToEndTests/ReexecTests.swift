import Foundation
import Testing

/// Issue 19: SIGUSR2 re-executes the agent in place (the binary now at its path), and the new
/// image takes every worker over: same agent pid, same worker pids, no failed request.
@Suite(.serialized, .endToEnd)
struct ReexecTests {
    @Test func aReexecKeepsEveryWorkerOfEveryAppUnderLoadTenTimesInARowAndADeployRollsAfter() throws {
        let app = try TinyApp.make(instances: 2)
        let port2 = try WorkerApp.freePort()
        try Self.commitSecondApp(app, port: port2)
        let binary = try Self.installCopy(in: app.f)
        app.agentBinary = binary
        app.detachedAgent = true
        try app.start()
        #expect(app.f.waitUntil(seconds: 60) { (try? Self.workers(app, "demo2").count) == 2 })
        let agent = app.agentPID
        let before = try Self.allWorkerPIDs(app)
        #expect(before.count == 4)

        // A retrying and a non-retrying client on each app.
        let loads = try [app.port, port2].flatMap { port in
            try ["mixed", "keepalive-noretry"].map { try LoadRun(port: port, path: "/", threads: 2, scratch: app.f.scratch, mode: $0) }
        }
        usleep(500_000)
        var apiBack: [Double] = []
        var steps: [[String: Int]] = []
        for round in 1...10 {
            let inode = try Self.replace(binary, with: Fixture.binary)
            let sent = Date()
            kill(agent, SIGUSR2)
            // The old image answers until it execs: wait for the new one (it has the new inode).
            #expect(app.f.waitUntil(seconds: 10) { Self.executableInode(agent) == inode }, "round \(round): \(app.agentLog)")
            #expect(app.f.waitUntil(seconds: 10) { app.f.healthzAnswers() })
            apiBack.append(Date().timeIntervalSince(sent))
            #expect(app.f.waitUntil(seconds: 10) { Self.image(app.f)?["reexecs"] as? Int == round }, "round \(round): \(app.agentLog)")
            #expect(app.f.waitUntil(seconds: 10) { Self.timeline(app.f)?["ready"] != nil && Self.timeline(app.f)?["api_listening"] != nil })
            steps.append(Self.timeline(app.f) ?? [:])
            #expect(try Self.allWorkerPIDs(app) == before, "round \(round): \(app.workerLog)")
            #expect(app.agentIsRunning)
        }
        let summaries = try loads.map { try $0.finish() }
        for summary in summaries {
            #expect(summary.requests > 100)
            #expect(summary.failed == 0, "\(summary.errors)")
        }
        let sorted = apiBack.sorted()
        let median = (sorted[4] + sorted[5]) / 2
        print("re-exec: SIGUSR2 to /healthz answering, median of 10: \(Int(median * 1000)) ms (max \(Int(sorted[9] * 1000)) ms); "
              + "requests \(summaries.map(\.requests)), failed \(summaries.map(\.failed))")
        print("re-exec steps, median of 10 (ms after SIGUSR2, as the agent logged them): " + Self.medianSteps(steps))
        // The issue asks for 1 s; measured here (debug build, this load loop, a shared 2-core
        // machine) the median is about 0.4 s, and the figure is printed above. The bound is loose
        // so that a CI machine ten times slower still passes; a regression to seconds fails.
        #expect(median < 8.0)
        for pid in before { #expect(WorkerApp.isRunning(pid)) }

        // Status: the version, when this image started, how many re-execs; the metrics agree.
        let image = try #require(Self.image(app.f))
        #expect(image["version"] as? String != nil)
        #expect(image["imageStartedAt"] as? String != image["processStartedAt"] as? String)
        let text = try app.f.slipway(["status"]).stdout
        #expect(text.contains("10 re-execs"), "\(text)")
        let metrics = try app.metrics()
        #expect(metrics.contains("slipway_agent_reexecs_total{outcome=\"succeeded\"} 10"), "\(metrics)")

        // A deploy right after rolls the workers from the new image, as always.
        let deployed = try app.deployNewVersion("v2")
        #expect(deployed.status == 0, "\(deployed.output)")
        let after = try Set(app.workers().compactMap { ($0["pid"] as? NSNumber)?.int32Value })
        #expect(after.count == 2 && after.isDisjoint(with: before), "\(app.workerLog)")
        #expect(try app.get("/").release != "")
        #expect(app.stop())
        for pid in before.union(after) { #expect(!WorkerApp.isRunning(pid)) }
    }

    @Test func aBinaryThatCannotTakeOverLeavesTheOldImageAndItsWorkers() throws {
        let app = try TinyApp.make(instances: 2)
        let binary = try Self.installCopy(in: app.f)
        app.agentBinary = binary
        app.detachedAgent = true
        try app.start()
        let agent = app.agentPID
        let before = try app.workerPIDs()
        let original = Self.executableInode(agent)

        // A script that exits at once: refused before the exec, the old image goes on.
        try Self.replaceWithScript(binary, "#!/bin/sh\nexit 0\n")
        kill(agent, SIGUSR2)
        #expect(app.f.waitUntil(seconds: 10) { Self.image(app.f)?["failedReexecs"] as? Int == 1 }, "\(app.agentLog)")
        #expect(app.agentLog.contains("re-exec failed, this image goes on"))
        #expect(Self.executableInode(agent) == original)
        #expect(try app.workerPIDs() == before)
        #expect(app.f.healthzAnswers())

        // A real binary that refuses the record once exec'd: the old image comes back from its fd.
        let real = app.f.root + "/bin/slipway-real"
        try Self.copyClosedOnExec(Fixture.binary, to: real)
        try Self.replaceWithScript(binary, "#!/bin/sh\nexec env SLIPWAY_TEST_HANDOVER_REFUSE=1 \(real) \"$@\"\n")
        kill(agent, SIGUSR2)
        #expect(app.f.waitUntil(seconds: 15) { Self.image(app.f)?["failedReexecs"] as? Int == 2 },
                "agent.json: \(app.f.read(app.f.stateDir + "/agent.json") ?? "none")\n\(app.agentLog)")
        #expect(app.agentLog.contains("the previous image took them back"), "\(app.agentLog)")
        #expect(Self.executableInode(agent) == original)
        #expect(try app.workerPIDs() == before)
        #expect(app.f.waitUntil(seconds: 5) { app.f.healthzAnswers() })
        #expect(try app.metrics().contains("slipway_agent_reexecs_total{outcome=\"rolled_back\"} 1"))

        // And a good binary at the path works after both.
        let inode = try Self.replace(binary, with: Fixture.binary)
        kill(agent, SIGUSR2)
        #expect(app.f.waitUntil(seconds: 10) { Self.executableInode(agent) == inode && Self.image(app.f)?["reexecs"] as? Int == 1 })
        #expect(try app.workerPIDs() == before)
        #expect(app.stop())
    }

    @Test func aFailedExecveLeavesTheOldImageGoingOnWithEveryWorkerCountedAndLogged() throws {
        let app = try TinyApp.make(instances: 2)
        let binary = try Self.installCopy(in: app.f)
        app.agentBinary = binary
        app.detachedAgent = true
        // The next execve (after the check passed and the workers were frozen) targets a path
        // that does not exist; once.
        app.agentEnvironment = ["SLIPWAY_TEST_EXEC_FAIL": "1"]
        try app.start()
        let agent = app.agentPID
        let before = try app.workerPIDs()
        let original = Self.executableInode(agent)
        let load = try LoadRun(port: app.port, path: "/", threads: 2, scratch: app.f.scratch, mode: "keepalive-noretry")
        usleep(300_000)

        _ = try Self.replace(binary, with: Fixture.binary)
        kill(agent, SIGUSR2)
        #expect(app.f.waitUntil(seconds: 10) { Self.image(app.f)?["failedReexecs"] as? Int == 1 }, "\(app.agentLog)")
        #expect(app.agentLog.contains("re-exec failed, this image goes on with every worker: execve \(binary).missing-for-a-test: No such file or directory"),
                "\(app.agentLog)")
        #expect(Self.executableInode(agent) == original)
        #expect(app.agentIsRunning)
        #expect(try app.workerPIDs() == before)
        #expect(app.f.healthzAnswers())
        let status = try app.f.slipway(["status"]).stdout
        #expect(status.contains("0 re-execs (1 failed); last: failed at") && status.contains("execve"), "\(status)")
        #expect(try app.metrics().contains("slipway_agent_reexecs_total{outcome=\"failed\"} 1"))
        usleep(500_000)
        let summary = try load.finish()
        #expect(summary.requests > 50)
        #expect(summary.failed == 0, "\(summary.errors)")

        // The workers are this image's again, unfrozen: a worker that dies is seen (its watcher
        // runs again) and restarted (the monitor runs again).
        let victim = try #require(before.first)
        kill(victim, SIGKILL)
        #expect(app.f.waitUntil(seconds: 30) {
            guard let pids = try? app.workerPIDs(), let workers = try? app.workers() else { return false }
            return pids.count == 2 && !pids.contains(victim) && workers.allSatisfy { $0["state"] as? String == "ready" }
        }, "\(app.workerLog)")
        let restarted = try app.workerPIDs()

        // The hook fired once: the next re-exec goes through, keeping every worker.
        let inode = try Self.replace(binary, with: Fixture.binary)
        kill(agent, SIGUSR2)
        #expect(app.f.waitUntil(seconds: 10) { Self.executableInode(agent) == inode && Self.image(app.f)?["reexecs"] as? Int == 1 },
                "\(app.agentLog)")
        #expect(try app.workerPIDs() == restarted)
        #expect(app.f.waitUntil(seconds: 5) { app.f.healthzAnswers() })
        #expect(app.stop())
    }

    @Test func aWorkerInCrashBackoffAtTheReexecIsRestartedByTheNewImageAndTheOthersKeepServing() throws {
        let app = try TinyApp.make(instances: 2)
        let crash = app.f.scratch + "/crash-\(UUID().uuidString)"
        try app.f.commitManifest("demo.yaml", """
        app: demo
        source: {repo: \(app.f.sourceRepo), ref: main}
        releases: {keep: 2}
        backend:
          command: /bin/sh -c 'test -e \(crash) && exit 3; exec /usr/bin/python3 -u worker.py'
          instances: 2
          listen: 127.0.0.1:\(app.port)
          ready: {notify: true, timeout: 10s}
          health: {path: /}
          stop: {signal: SIGTERM, timeout: 3s}
        """)
        let binary = try Self.installCopy(in: app.f)
        app.agentBinary = binary
        app.detachedAgent = true
        try app.start()
        let agent = app.agentPID
        let workers = try app.workers()
        let survivor = try #require(workers.first { (($0["slot"] as? NSNumber)?.intValue) == 0 }.flatMap { ($0["pid"] as? NSNumber)?.int32Value })
        let victim = try #require(workers.first { (($0["slot"] as? NSNumber)?.intValue) == 1 }.flatMap { ($0["pid"] as? NSNumber)?.int32Value })

        // Slot 1 crash-loops (each restart exits 3): it waits out its backoff when SIGUSR2 comes.
        _ = FileManager.default.createFile(atPath: crash, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: crash) }
        kill(victim, SIGKILL)
        #expect(app.f.waitUntil(seconds: 30) {
            (try? app.workers())?.contains { (($0["slot"] as? NSNumber)?.intValue) == 1 && $0["state"] as? String == "backoff" } == true
        }, "\(app.workerLog)")
        let inode = try Self.replace(binary, with: Fixture.binary)
        kill(agent, SIGUSR2)
        #expect(app.f.waitUntil(seconds: 10) { Self.executableInode(agent) == inode && Self.image(app.f)?["reexecs"] as? Int == 1 },
                "\(app.agentLog)")
        // The new image's first passes try slot 1 again (it still crashes): slot 0 keeps serving.
        #expect(app.f.waitUntil(seconds: 20) {
            app.workerLog.components(separatedBy: "taken over by a new image").last?.contains("exit") == true
        }, "\(app.workerLog)")
        usleep(1_000_000)
        #expect(WorkerApp.isRunning(survivor), "\(app.workerLog)")
        #expect((try? app.get("/").status) == 200)

        // Once the crash is fixed, the new image restarts slot 1 (its backoff goes on) and both serve.
        try FileManager.default.removeItem(atPath: crash)
        #expect(app.f.waitUntil(seconds: 60) {
            guard let table = try? app.workers() else { return false }
            return table.count == 2 && table.allSatisfy { $0["state"] as? String == "ready" }
        }, "\(app.workerLog)")
        #expect(try app.workerPIDs().contains(survivor))
        #expect(app.stop())
    }

    @Test func aReexecDuringABuildCancelsThePassCleanlyAndTheNextPassDeploys() throws {
        let f = try Fixture(name: "reexec")
        let good = try f.commitSource(["index.html": "good"])
        try f.commitManifest("demo.yaml", f.manifest(ref: good))
        #expect(try f.pass().status == 0)
        let before = try #require(f.current())
        let slow = try f.commitSource(["index.html": "slow"])
        let marker = f.scratch + "/build-started"
        try f.commitManifest("demo.yaml", f.manifest(ref: slow, backendBuild: "touch \(marker); sleep 60"))
        let binary = try Self.installCopy(in: f)
        let agent = try AgentProcess(config: f.configPath, log: f.root + "/agent.log", binary: binary, detached: true)
        #expect(f.waitUntil(seconds: 60) { FileManager.default.fileExists(atPath: marker) })
        // What the next pass should deploy (the build in flight still uses the slow manifest).
        try f.commitManifest("demo.yaml", f.manifest(ref: slow))

        let inode = try Self.replace(binary, with: Fixture.binary)
        kill(agent.pid, SIGUSR2)
        #expect(f.waitUntil(seconds: 20) { Self.executableInode(agent.pid) == inode })
        let strays = try Fixture.run("/usr/bin/pgrep", ["-f", "\(marker); sleep 60"], timeout: 5)
        #expect(strays.stdout.isEmpty)
        #expect(f.waitUntil(seconds: 60) { f.currentFile("frontend/index.html") == "slow" }, "\(f.read(f.root + "/agent.log") ?? "")")
        #expect(f.current() != before)
        // The switch renames `current` first and removes its staging dir just after.
        #expect(f.waitUntil(seconds: 10) { f.stagingEntries().isEmpty }, "\(f.stagingEntries())")
        #expect(agent.stop())
    }

    // MARK: Helpers

    /// A copy of the built binary at `root/bin/slipway`, which the agent is started from.
    static func installCopy(in f: Fixture) throws -> String {
        try FileManager.default.createDirectory(atPath: f.root + "/bin", withIntermediateDirectories: true)
        let path = f.root + "/bin/slipway"
        _ = try replace(path, with: Fixture.binary)
        return path
    }

    /// Puts a copy of `source` at `path` as a new file (a new inode, as dpkg does); returns its inode.
    static func replace(_ path: String, with source: String) throws -> UInt64 {
        let temporary = path + ".new"
        try? FileManager.default.removeItem(atPath: temporary)
        try copyClosedOnExec(source, to: temporary)
        guard rename(temporary, path) == 0 else { throw FixtureError("rename \(temporary): \(errno)") }
        var info = stat()
        stat(path, &info)
        return UInt64(info.st_ino)
    }

    /// A copy written through an fd opened O_CLOEXEC (FileManager's copy opens without it): a
    /// process another test spawns meanwhile must not keep the copy open for writing, or the
    /// exec of it fails with ETXTBSY for as long as that process lives.
    static func copyClosedOnExec(_ source: String, to path: String) throws {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: source))
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o755)
        guard fd >= 0 else { throw FixtureError("open \(path): \(errno)") }
        defer { close(fd) }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw FixtureError("write \(path): \(written) of \(bytes.count) bytes") }
        fchmod(fd, 0o755)
    }

    static func replaceWithScript(_ path: String, _ text: String) throws {
        let temporary = path + ".new"
        try text.write(toFile: temporary, atomically: false, encoding: .utf8)
        chmod(temporary, 0o755)
        guard rename(temporary, path) == 0 else { throw FixtureError("rename \(temporary): \(errno)") }
    }

    /// The inode `/proc/PID/exe` refers to (the image that process runs).
    static func executableInode(_ pid: Int32) -> UInt64? {
        var info = stat()
        guard stat("/proc/\(pid)/exe", &info) == 0 else { return nil }
        return UInt64(info.st_ino)
    }

    static func image(_ f: Fixture) -> [String: Any]? {
        guard let data = FileManager.default.contents(atPath: f.stateDir + "/agent.json") else { return nil }
        return try? JSONSerialization.jsonObject(with: data) as? [String: Any]
    }

    /// The last re-exec's steps from `agent.json`: milliseconds after SIGUSR2, by step.
    static func timeline(_ f: Fixture) -> [String: Int]? {
        ((image(f)?["lastReexecTimeline"] as? [String: Any])?["milliseconds"] as? [String: Any])?.compactMapValues { ($0 as? NSNumber)?.intValue }
    }

    /// "pass_over 2, checked 110, …" in the order the steps happen, each the median of `rounds`.
    static func medianSteps(_ rounds: [[String: Int]]) -> String {
        let order = ["pass_over", "checked", "hooks_stopped", "frozen", "exec", "image_started", "record_read", "adopted", "api_listening", "ready"]
        return order.compactMap { step -> String? in
            let values = rounds.compactMap { $0[step] }.sorted()
            guard !values.isEmpty else { return nil }
            let middle = values.count / 2
            let median = values.count % 2 == 0 ? (values[middle - 1] + values[middle]) / 2 : values[middle]
            return "\(step) \(median)"
        }.joined(separator: ", ")
    }

    static func workers(_ app: WorkerApp, _ name: String) throws -> [[String: Any]] {
        let table = try app.f.appStatus(name)["workers"] as? [String: Any]
        return (table?["workers"] as? [[String: Any]] ?? []).filter { $0["state"] as? String == "ready" }
    }

    static func allWorkerPIDs(_ app: WorkerApp) throws -> Set<Int32> {
        Set(try (workers(app, "demo") + workers(app, "demo2")).compactMap { ($0["pid"] as? NSNumber)?.int32Value })
    }

    static func commitSecondApp(_ app: WorkerApp, port: Int) throws {
        try app.f.commitManifest("demo2.yaml", """
        app: demo2
        source: {repo: \(app.f.sourceRepo), ref: main}
        releases: {keep: 2}
        backend:
          command: /usr/bin/python3 -u worker.py
          instances: 2
          listen: 127.0.0.1:\(port)
          ready: {notify: true, timeout: 10s}
          health: {path: /}
          stop: {signal: SIGTERM, timeout: 3s}
        """)
    }
}
