import Foundation
import Testing

/// The commands an operator runs: rollback, releases, status, validate, and the agent itself.
@Suite(.endToEnd)
struct OperatorTests {
    /// `slipway agent …` is parsed as a command of its own (issue 20: 4 to 5 ms of every
    /// `agent --once`); its help and its errors still read as the whole command line's do.
    @Test func theAgentsHelpAndErrorsNameTheWholeCommand() throws {
        let help = try Fixture.run(Fixture.binary, ["agent", "--help"], timeout: 30)
        #expect(help.status == 0)
        #expect(help.stdout.contains("USAGE: slipway agent"), "\(help.output)")
        let unknown = try Fixture.run(Fixture.binary, ["agent", "--bogus"], timeout: 30)
        #expect(unknown.status == 64)
        #expect(unknown.stderr.contains("Unknown option '--bogus'"))
        #expect(unknown.stderr.contains("Usage: slipway agent"), "\(unknown.output)")
        let missing = try Fixture.run(Fixture.binary, ["agent", "--once", "--config", "/nonexistent/agent.yaml"], timeout: 30)
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("/nonexistent/agent.yaml"), "\(missing.output)")
    }

    @Test func rollbackSwitchesBackAndPinsUntilTheManifestChanges() throws {
        let f = try Fixture()
        let one = try f.commitSource(["index.html": "one"])
        try f.commitManifest("demo.yaml", f.manifest(ref: one))
        #expect(try f.pass().status == 0)
        let first = try #require(f.current())
        let two = try f.commitSource(["index.html": "two"])
        try f.commitManifest("demo.yaml", f.manifest(ref: two))
        #expect(try f.pass().status == 0)
        let second = try #require(f.current())

        let rollback = try f.slipway(["rollback", "demo"])
        #expect(rollback.status == 0, "\(rollback.output)")
        #expect(rollback.stdout.contains("current is now \(first)"))
        #expect(f.current() == first)
        #expect(f.currentFile("frontend/index.html") == "one")

        // The pin holds across passes, and status says so and why.
        #expect(try f.pass().status == 0)
        #expect(f.current() == first)
        let status = try f.appStatus()
        #expect(status["condition"] as? String == "pinned")
        #expect((status["message"] as? String)?.contains("rolled back from \(second)") == true)
        let text = try f.slipway(["status"]).stdout
        #expect(text.contains("pinned"))

        // `releases` marks current.
        let releases = try f.slipway(["releases", "demo"]).stdout
        #expect(releases.contains("* \(first)"))
        #expect(releases.contains("  \(second)"))

        // Rolling "back" to a named release works too; an unknown id is refused.
        let refused = try f.slipway(["rollback", "demo", "--to", "20200101T000000Z-abcdef0"])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("no release '20200101T000000Z-abcdef0' is kept"))
        #expect(f.current() == first)

        // A manifest change releases the pin and deploys what it declares.
        let three = try f.commitSource(["index.html": "three"])
        try f.commitManifest("demo.yaml", f.manifest(ref: three))
        #expect(try f.pass().status == 0)
        #expect(f.currentFile("frontend/index.html") == "three")
        #expect(try f.appStatus()["condition"] as? String == "converged")
    }

    @Test func aSecondAgentOnTheSameStateDirRefusesNamingTheHolder() throws {
        let f = try Fixture()
        try f.commitSource(["index.html": "x"])
        try f.commitManifest("demo.yaml", f.manifest(ref: "main"))
        let agent = try f.launch(["agent"])
        defer {
            kill(agent.processIdentifier, SIGKILL)
            agent.waitUntilExit()
        }
        let deadline = Date().addingTimeInterval(30)
        while f.current() == nil && Date() < deadline { usleep(20_000) }
        #expect(f.current() != nil)

        let second = try f.pass()
        #expect(second.status != 0)
        #expect(second.stderr.contains("pid \(agent.processIdentifier)"))

        // The running agent reacts to a new commit by polling (1s here) and exits cleanly on SIGTERM.
        let next = try f.commitSource(["index.html": "polled"])
        let pollDeadline = Date().addingTimeInterval(30)
        while f.current()?.hasSuffix(String(next.prefix(7))) != true && Date() < pollDeadline { usleep(50_000) }
        #expect(f.currentFile("frontend/index.html") == "polled")
        kill(agent.processIdentifier, SIGTERM)
        let stopDeadline = Date().addingTimeInterval(15)
        while agent.isRunning && Date() < stopDeadline { usleep(20_000) }
        #expect(!agent.isRunning)
        #expect(agent.terminationStatus == 0)
    }

    @Test func validateReportsEveryProblemWithItsPlace() throws {
        let f = try Fixture()
        let dir = f.root + "/check"
        try f.write("""
        app: Platform
        source:
          repo: relative/path
          ref: main
        releases:
          keep: 0
        frontend:
          output: ../outside
        """, to: dir + "/bad.yaml")
        try f.write(f.manifest(app: "one", ref: "main"), to: dir + "/one.yaml")
        try f.write(f.manifest(app: "one", ref: "main"), to: dir + "/nested/copy.yml")

        let result = try f.slipway(["validate", dir], config: false)
        #expect(result.status == 1)
        let lines = result.stderr
        #expect(lines.contains("\(dir)/bad.yaml:1:6: app name 'Platform' is not valid"))
        #expect(lines.contains("\(dir)/bad.yaml:3:9: source.repo 'relative/path' is not a repository location"))
        #expect(lines.contains("\(dir)/bad.yaml:6:9: releases.keep must be between 1 and 100, not 0"))
        #expect(lines.contains("\(dir)/bad.yaml:8:11: frontend.output '../outside' is not allowed: '..' would leave the app's directory"))
        #expect(lines.contains("\(dir)/nested/copy.yml:1:6: app 'one' is also declared in \(dir)/one.yaml:1:6"))
        #expect(lines.contains("\(dir)/one.yaml:1:6: app 'one' is also declared in \(dir)/nested/copy.yml:1:6"))

        try FileManager.default.removeItem(atPath: dir + "/bad.yaml")
        try FileManager.default.removeItem(atPath: dir + "/nested/copy.yml")
        let ok = try f.slipway(["validate", dir + "/one.yaml"], config: false)
        #expect(ok.status == 0)
        #expect(ok.stdout == "ok: 1 manifest valid (one)\n")
    }

    @Test func theExampleManifestsInTheRepoAreValid() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let result = try Fixture.run(Fixture.binary, ["validate", root.appendingPathComponent("manifests").path], timeout: 30)
        #expect(result.status == 0, "\(result.output)")
    }

    @Test func aBadConfigIsReportedWithItsPlace() throws {
        let f = try Fixture()
        try f.write("manifests:\n  repo: /srv/git/m.git\n  brnach: main\n", to: f.configPath)
        let result = try f.pass()
        #expect(result.status == 2)
        #expect(result.stderr.contains("\(f.configPath):3:3: unknown key 'brnach' in manifests — did you mean 'branch'?"))
    }
}
