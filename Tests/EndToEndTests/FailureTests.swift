import Foundation
import Testing

/// What goes wrong must never take down what runs: failed builds, invalid manifests,
/// unreachable sources and a killed agent all leave `current` on a complete release.
@Suite(.endToEnd)
struct FailureTests {
    @Test func aFailedBuildKeepsCurrentAndIsNotRetriedUntilAskedOrChanged() throws {
        let f = try Fixture()
        let good = try f.commitSource(["index.html": "good"])
        try f.commitManifest("demo.yaml", f.manifest(ref: good))
        #expect(try f.pass().status == 0)
        let before = try #require(f.current())

        let bad = try f.commitSource(["index.html": "bad"])
        try f.commitManifest("demo.yaml", f.manifest(ref: bad, backendBuild: "echo compiling; echo 'error: syntax error in server.js' >&2; exit 3"))
        let failed = try f.pass()
        #expect(failed.status != 0)
        #expect(failed.stderr.contains("not converged"))
        #expect(failed.stderr.contains("demo: build failed"))
        #expect(failed.stderr.contains("error: syntax error in server.js"))
        #expect(failed.stderr.contains("exited with status 3"))
        #expect(f.current() == before)
        #expect(f.currentFile("frontend/index.html") == "good")
        #expect(f.releases() == [before])
        #expect(f.stagingEntries().isEmpty)

        let status = try f.appStatus()
        #expect(status["condition"] as? String == "failed")
        #expect((status["message"] as? String)?.contains("exited with status 3") == true)

        // The same desired state is not rebuilt on the next pass.
        let logs = try FileManager.default.contentsOfDirectory(atPath: f.stateDir + "/logs/demo").count
        let held = try f.pass()
        #expect(held.status != 0)
        #expect(!held.stderr.contains("deploying"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: f.stateDir + "/logs/demo").count == logs)
        #expect(held.stderr.contains("slipway deploy demo"))

        // An operator's `slipway deploy demo` tries once more (and fails the same way).
        let retry = try f.slipway(["deploy", "demo"])
        #expect(retry.status != 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: f.stateDir + "/logs/demo").count == logs + 1)
        #expect(f.current() == before)

        // A fix in the manifest is picked up at once.
        try f.commitManifest("demo.yaml", f.manifest(ref: bad))
        #expect(try f.pass().status == 0)
        #expect(f.currentFile("frontend/index.html") == "bad")
    }

    @Test func aBuildOverItsTimeoutIsStoppedAndFails() throws {
        let f = try Fixture()
        let sha = try f.commitSource(["index.html": "x"])
        try f.commitManifest("demo.yaml", f.manifest(ref: sha, extra: "build_timeout: 1s", backendBuild: "sleep 30"))
        let started = Date()
        let result = try f.pass()
        #expect(result.status != 0)
        #expect(Date().timeIntervalSince(started) < 15)
        #expect(result.stderr.contains("timed out"))
        #expect(f.current() == nil)
        #expect(f.releases().isEmpty)
    }

    /// A build that writes 1 GB: the log stops at build_log_max (head and tail kept), the build
    /// runs to its end and the deploy succeeds.
    @Test func aBuildThatFloodsItsLogIsCappedAndStillDeploys() throws {
        let f = try Fixture()
        let sha = try f.commitSource(["index.html": "flood"])
        try f.commitManifest("demo.yaml", f.manifest(ref: sha, backendBuild: "yes slipway-flood | head -c 1073741824; echo FLOOD-DONE > BUILT"))
        let result = try f.pass(timeout: 300)
        #expect(result.status == 0, "\(result.output)")
        #expect(f.currentFile("frontend/index.html") == "flood")
        #expect(f.currentFile("backend/BUILT") == "FLOOD-DONE\n")
        let logs = try FileManager.default.contentsOfDirectory(atPath: f.stateDir + "/logs/demo").filter { $0.hasSuffix(".build.log") }
        let log = f.stateDir + "/logs/demo/" + (try #require(logs.first))
        let size = (try FileManager.default.attributesOfItem(atPath: log)[.size] as? NSNumber)?.intValue ?? 0
        #expect(size > 30 << 20 && size <= (32 << 20) + 4096, "the build log is \(size) bytes")
        let tail = try #require(FileHandle(forReadingAtPath: log))
        defer { try? tail.close() }
        try tail.seek(toOffset: UInt64(size - (1 << 20) - 300))
        let end = String(decoding: tail.readDataToEndOfFile(), as: UTF8.self)
        #expect(end.contains("bytes of output cut here"))
        #expect(end.contains("==> backend build exited with status 0 after"), "\(end.suffix(300))")
    }

    @Test func anInvalidManifestKeepsCurrentAndPointsAtTheMistake() throws {
        let f = try Fixture()
        let sha = try f.commitSource(["index.html": "good"])
        try f.commitManifest("demo.yaml", f.manifest(ref: sha))
        #expect(try f.pass().status == 0)
        let before = try #require(f.current())

        try f.commitManifest("demo.yaml", """
        app: demo
        source:
          repo: \(f.sourceRepo)
          ref: \(sha)
        frontend:
          ouptut: dist
        backend: {}
        """)
        let result = try f.pass()
        #expect(result.status != 0)
        #expect(result.stderr.contains("manifests/demo.yaml:6:3: unknown key 'ouptut' in frontend — did you mean 'output'?"))
        #expect(f.current() == before)
        #expect(try f.appStatus()["condition"] as? String == "invalid")
    }

    @Test func oneBrokenAppNeverBlocksTheOthers() throws {
        let f = try Fixture()
        let sha = try f.commitSource(["index.html": "good"])
        try f.commitManifest("good.yaml", f.manifest(app: "good", ref: sha))
        try f.commitManifest("lost.yaml", f.manifest(app: "lost", ref: "no-such-branch"))
        try f.commitManifest("gone.yaml", f.manifest(app: "gone", ref: sha).replacingOccurrences(of: f.sourceRepo, with: f.root + "/missing.git"))
        let result = try f.pass()
        #expect(result.status != 0)
        #expect(result.stderr.contains("lost: ref 'no-such-branch' is neither a tag nor a branch"))
        #expect(result.stderr.contains("gone:"))
        #expect(f.current("good") != nil)
        #expect(try f.appStatus("lost")["condition"] as? String == "unresolved")
    }

    @Test func aRemovedManifestMarksTheAppRemovedAndKeepsItsFiles() throws {
        let f = try Fixture()
        let sha = try f.commitSource(["index.html": "x"])
        try f.commitManifest("demo.yaml", f.manifest(ref: sha))
        #expect(try f.pass().status == 0)
        let release = try #require(f.current())
        try f.removeManifest("demo.yaml")
        // Within removal_grace (10 min by default) it stays as it is, saying when it goes.
        #expect(try f.pass().status == 0)
        #expect(try f.appStatus()["condition"] as? String == "removing")
        #expect((try f.appStatus()["message"] as? String)?.contains("removing in 10m") == true)
        let config = try #require(f.read(f.configPath))
        try f.write(config + "\nremoval_grace: 0s\n", to: f.configPath)
        #expect(try f.pass().status == 0)
        #expect(try f.appStatus()["condition"] as? String == "removed")
        #expect(f.current() == release)
        #expect(f.currentFile("frontend/index.html") == "x")
    }

    @Test func killingTheAgentDuringABuildConvergesOnTheNextPass() throws {
        let f = try Fixture()
        let good = try f.commitSource(["index.html": "good"])
        try f.commitManifest("demo.yaml", f.manifest(ref: good))
        #expect(try f.pass().status == 0)
        let before = try #require(f.current())

        let slow = try f.commitSource(["index.html": "slow"])
        let marker = f.scratch + "/build-started"
        // The build also leaves a helper with no marker in a session of its own: only the build's
        // cgroup holds it (as root), and the next agent kills that group.
        let tag = Int.random(in: 690_000...699_999) * 2
        try f.commitManifest("demo.yaml", f.manifest(ref: slow, backendBuild: "env -i setsid sleep \(tag) </dev/null >/dev/null 2>&1 & touch \(marker); sleep 60; echo done > BUILT"))

        let agent = try f.launch(["agent", "--once"])
        #expect(f.waitUntil(seconds: 60) { FileManager.default.fileExists(atPath: marker) && !HardeningTests.strays(tag).isEmpty })
        let groups = Set(HardeningTests.strays(tag).compactMap(Self.cgroupDirectory))
        defer { for pid in HardeningTests.strays(tag) { kill(pid, SIGKILL) } }
        kill(agent.processIdentifier, SIGKILL)
        agent.waitUntilExit()

        // Mid-build: staging exists, current still names the complete old release.
        #expect(!f.stagingEntries().isEmpty)
        #expect(f.current() == before)
        #expect(f.currentFile("frontend/index.html") == "good")

        // The orphaned build is found and killed, staging removed; the fixed build deploys.
        try f.commitManifest("demo.yaml", f.manifest(ref: slow))
        let result = try f.pass()
        #expect(result.status == 0, "\(result.output)")
        #expect(f.stagingEntries().isEmpty)
        #expect(f.currentFile("frontend/index.html") == "slow")
        let strays = try Fixture.run("/usr/bin/pgrep", ["-f", "sleep 60; echo done"], timeout: 5)
        #expect(strays.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "stray build processes: \(strays.stdout)")
        if geteuid() == 0 {
            #expect(f.waitUntil(seconds: 10) { HardeningTests.strays(tag).isEmpty }, "the dead agent's build left \(HardeningTests.strays(tag)) running")
            #expect(groups.count == 1 && groups.allSatisfy { $0.contains("/step-") && access($0, F_OK) != 0 }, "the dead agent's build group is left: \(groups)")
        }
    }

    /// The cgroup directory `pid` runs in (cgroup v2: the `0::` line below the cgroup2 mount).
    static func cgroupDirectory(_ pid: Int32) -> String? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("0::/") }),
              let mounts = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8),
              let mount = mounts.split(separator: "\n").first(where: { $0.contains(" - cgroup2 ") })?.split(separator: " ").dropFirst(4).first
        else { return nil }
        return String(mount) + line.dropFirst(3)
    }
}

@Suite(.endToEnd)
struct BrokenYAMLTests {
    @Test func aManifestThatDoesNotParseKeepsItsAppsReleaseAndIsNotMistakenForARemoval() throws {
        let f = try Fixture()
        let sha = try f.commitSource(["index.html": "good"])
        try f.commitManifest("demo.yaml", f.manifest(ref: sha))
        #expect(try f.pass().status == 0)
        let before = try #require(f.current())

        // Broken YAML on the line with `app:` itself: the app is still known by its file.
        try f.commitManifest("demo.yaml", "app: [demo\nsource: {repo: \(f.sourceRepo), ref: \(sha)}\n")
        let result = try f.pass()
        #expect(result.status != 0)
        #expect(result.stderr.contains("manifests/demo.yaml:"))
        #expect(f.current() == before)
        #expect(try f.appStatus()["condition"] as? String == "invalid")

        // Broken YAML elsewhere: the app is found by its `app:` line.
        try f.commitManifest("demo.yaml", "app: demo\nsource:\n  repo: x: y\n")
        let again = try f.pass()
        #expect(again.status != 0)
        #expect(again.stderr.contains("manifests/demo.yaml:3:"))
        #expect(try f.appStatus()["condition"] as? String == "invalid")
        #expect(f.current() == before)
    }
}

@Suite(.endToEnd)
struct ShutdownTests {
    @Test func sigtermDuringABuildStopsItCleanlyAndTheNextStartDeploys() throws {
        let f = try Fixture()
        let good = try f.commitSource(["index.html": "good"])
        try f.commitManifest("demo.yaml", f.manifest(ref: good))
        #expect(try f.pass().status == 0)
        let before = try #require(f.current())

        let slow = try f.commitSource(["index.html": "slow"])
        let marker = f.scratch + "/build-started"
        try f.commitManifest("demo.yaml", f.manifest(ref: slow, backendBuild: "touch \(marker); sleep 60"))
        let agent = try f.launch(["agent"])
        defer { if agent.isRunning { kill(agent.processIdentifier, SIGKILL) } }
        #expect(f.waitUntil(seconds: 60) { FileManager.default.fileExists(atPath: marker) })

        let stopped = Date()
        kill(agent.processIdentifier, SIGTERM)
        agent.waitUntilExit()
        #expect(Date().timeIntervalSince(stopped) < 15)
        #expect(agent.terminationStatus == 0)
        #expect(f.current() == before)
        #expect(f.stagingEntries().isEmpty)
        let strays = try Fixture.run("/usr/bin/pgrep", ["-f", "\(marker); sleep 60"], timeout: 5)
        #expect(strays.stdout.isEmpty)
        let status = try f.appStatus()
        #expect(status["condition"] as? String == "interrupted")
        // Not remembered as a failure, so the same desired state is built again on the next start.
        let state = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: f.stateDir + "/state.json"))) as? [String: Any]
        let memory = ((state?["apps"] as? [String: Any])?["demo"] as? [String: Any])?["memory"] as? [String: Any]
        #expect(memory != nil)
        #expect(memory?["failure"] == nil)

        try f.commitManifest("demo.yaml", f.manifest(ref: slow))
        #expect(try f.pass().status == 0)
        #expect(f.currentFile("frontend/index.html") == "slow")
    }
}

@Suite(.endToEnd)
struct HugeManifestTests {
    @Test func aHugeManifestIsRefusedUnreadAndTheOtherAppsDeploy() throws {
        let f = try Fixture()
        let sha = try f.commitSource(["index.html": "good"])
        try f.commitManifest("demo.yaml", f.manifest(ref: sha))
        #expect(try f.pass().status == 0)
        let before = try #require(f.current())

        try f.commitManifest("demo.yaml", f.manifest(ref: sha) + "\n# " + String(repeating: "x", count: 2_000_000) + "\n")
        try f.commitManifest("other.yaml", f.manifest(app: "other", ref: sha))
        let result = try f.pass()
        #expect(result.status != 0)
        #expect(result.stderr.contains("manifests/demo.yaml:1:1: the file is 2"))
        #expect(result.stderr.contains("a manifest may be at most 1048576"))
        #expect(f.current() == before)
        #expect(try f.appStatus()["condition"] as? String == "invalid")
        #expect(f.current("other") != nil)
    }
}
