import Foundation
import Testing
@testable import Slipway
@testable import SlipwayCore

/// The migrate steps as real child processes (no database needed: the commands are shell).
/// Bounds are loose on purpose: in a full run the end-to-end tests can starve these async tests
/// of the cooperative pool for tens of seconds.
@Suite struct MigrationRunnerTests {
    let dir = TempDir()

    func runner(_ migrate: Migrate, env: [String: String] = [:]) throws -> MigrationRunner {
        try FileManager.default.createDirectory(atPath: dir.path + "/backend", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir.path + "/env", withIntermediateDirectories: true)
        try env.map { "\($0.key)=\($0.value)\n" }.joined().write(toFile: dir.path + "/env/demo.env", atomically: true, encoding: .utf8)
        var config = AgentConfig(host: "web-1", manifests: .init(repo: "/nowhere"), appsRoot: dir.path + "/apps", stateDir: dir.path + "/state")
        config.envDir = dir.path + "/env"
        // Under root the steps run as an unprivileged account, which must reach the temp dir.
        config.appsUser = "nobody"
        chmod(dir.path, 0o755)
        let manifest = Manifest(app: AppName("demo")!, source: .init(repo: "/r.git", ref: .name("main")),
                                env: [.init(name: "FROM_MANIFEST", value: "m"), .init(name: "SECRET", value: "manifest")],
                                backend: .init(envFile: dir.path + "/env/demo.env"), migrate: migrate)
        let environment = try AppEnvironment.make(manifest: manifest, release: ReleaseID("20261125T120000Z-aaaaaaa")!, sha: "abc",
                                                  config: config)
        return MigrationRunner(migrate: migrate, directory: dir.path + "/backend", environment: environment, logPath: dir.path + "/build.log",
                               marker: dir.path + "/staging/step")
    }

    var log: String { (try? String(contentsOfFile: dir.path + "/build.log", encoding: .utf8)) ?? "" }

    @Test func aStepRunsInTheBackendDirWithTheAppsEnvAndItsOutputGoesToTheBuildLog() async throws {
        let command = "echo \"$SLIPWAY_STEP $FROM_MANIFEST $SECRET $SLIPWAY_RELEASE $SLIPWAY_SHA in $(pwd)\""
        try await runner(Migrate(expand: command, contract: command), env: ["SECRET": "from-env-file"]).run(.expand)
        #expect(log.contains("==> expand: echo"))
        #expect(log.contains("expand m from-env-file 20261125T120000Z-aaaaaaa abc in \(dir.path)/backend"), "\(log)")
        #expect(log.contains("==> expand exited with status 0"))
    }

    @Test func aFailingStepThrowsWithItsOutputTail() async throws {
        let step = try runner(Migrate(contract: "echo 'ERROR: cannot drop column name'; exit 3"))
        do {
            try await step.run(.contract)
            Issue.record("a failing contract passed")
        } catch let failure as MigrationRunner.Failure {
            #expect(failure.description.hasPrefix("the contract step exited with status 3"))
            #expect(failure.description.contains("ERROR: cannot drop column name"))
        }
    }

    @Test func aStepOverItsTimeoutIsStopped() async throws {
        let step = try runner(Migrate(expand: "sleep 600", timeout: .milliseconds(300)))
        let clock = ContinuousClock()
        let started = clock.now
        await #expect(throws: MigrationRunner.Failure.self) { try await step.run(.expand) }
        #expect(clock.now - started < .seconds(300))
        #expect(log.contains("timed out"))
    }

    @Test func aWaitingHostRetriesTheCheckUntilItPasses() async throws {
        let marker = dir.path + "/expanded"
        let step = try runner(Migrate(expand: "x", check: "test -e \(marker) || { echo waiting; exit 1; }", timeout: .seconds(300), hosts: ["web-2"]))
        let other = Task {
            try await Task.sleep(for: .milliseconds(800))
            _ = FileManager.default.createFile(atPath: marker, contents: nil)
        }
        let waited = try await step.waitForCheck()
        try await other.value
        #expect(waited >= .milliseconds(700) && waited < .seconds(290), "waited \(waited)")
        #expect(log.contains("waiting") && log.contains("==> check passed on attempt"))
    }

    @Test func aCheckThatNeverPassesFailsAfterTheTimeout() async throws {
        let step = try runner(Migrate(expand: "x", check: "echo 'waiting for migration 002'; exit 1", timeout: .seconds(1), hosts: ["web-2"]))
        do {
            _ = try await step.waitForCheck()
            Issue.record("the wait passed")
        } catch let failure as MigrationRunner.Failure {
            #expect(failure.description.contains("not ready after 1s (migrate.timeout): migrate.check kept failing"), "\(failure)")
            #expect(failure.description.contains("check that a host in migrate.hosts deployed this release"))
        }
    }

    @Test func aForcedRollbackRequestSurvivesTheQueue() throws {
        let requests = OperatorRequests(stateDir: dir.path)
        let app = AppName("demo")!
        try requests.submit(.init(app: app, kind: .rollback, argument: "20261125T120000Z-aaaaaaa", force: true))
        #expect(requests.pending() == [.init(app: app, kind: .rollback, argument: "20261125T120000Z-aaaaaaa", force: true)])
        try requests.submit(.init(app: app, kind: .rollback, argument: nil, force: true))
        #expect(requests.pending() == [.init(app: app, kind: .rollback, argument: nil, force: true)])
        try requests.submit(.init(app: app, kind: .rollback, argument: nil))
        #expect(requests.pending() == [.init(app: app, kind: .rollback, argument: nil, force: false)])
    }
}
