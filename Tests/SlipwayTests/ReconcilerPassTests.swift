import Foundation
import Testing
@testable import Slipway
import SlipwayCore

/// `Reconciler.pass()` in-process, against real git repos on disk: the deploy's stage list, a
/// failure and its memory, a push superseding a deploy in flight. What needs the binary
/// (signals, kill -9, systemd, nginx) stays in EndToEndTests.
@Suite(.timeLimit(.minutes(2))) struct ReconcilerPassTests {
    @Test func aDeployRunsItsStagesInOrderAndRecordsATimedFetch() async throws {
        let host = try PassSandbox()
        try host.commitSource(["index.html": "v1"])
        try host.commitManifest()
        let reconciler = host.reconciler()
        let events = EventLog()
        reconciler.onEvent = { events.append($0) }

        let result = await reconciler.pass()
        #expect(result.converged, "\(result.unsettled)")
        #expect(events.stageLines == ["fetch started", "fetch done", "build started", "build done",
                                      "switch started", "switch done", "prune started", "prune done"])
        let status = try #require(host.status())
        #expect(status.condition == .converged)
        let deploy = try #require(status.lastDeploy)
        #expect(deploy.result == .succeeded && deploy.kind == nil)
        #expect(deploy.stages.map(\.stage) == [.fetch, .build, .switch, .prune])
        // The fetch stage counts the source's sync with its remote as well as the export.
        let synced = try #require(reconciler.mirrors.syncTime(of: host.source), "the source was not synced this pass")
        #expect(synced > .zero && (deploy.stages.first?.milliseconds ?? -1) >= synced.milliseconds, "sync \(synced)")
        let release = try #require(deploy.release)
        let index = try String(contentsOfFile: host.appsRoot + "/demo/releases/\(release)/frontend/index.html", encoding: .utf8)
        #expect(index == "v1")
        #expect(host.current() == "releases/\(release)")
        let record = try #require(ReleaseStore(layout: AppLayout(appsRoot: host.appsRoot, app: AppName("demo")!)).record(release))
        #expect(record.stages.map(\.stage) == [.fetch, .build])

        // Nothing moved: the next pass deploys nothing and runs no stage.
        let before = events.stageLines.count
        #expect(await reconciler.pass().converged)
        #expect(events.stageLines.count == before)
    }

    @Test func aFailedBuildIsRememberedAndNotRetriedUntilTheSourceChanges() async throws {
        let host = try PassSandbox()
        try host.commitSource(["index.html": "v1"])
        try host.commitManifest(build: "echo broken >&2; exit 3")
        let reconciler = host.reconciler()
        let events = EventLog()
        reconciler.onEvent = { events.append($0) }

        #expect(await !reconciler.pass().converged)
        var status = try #require(host.status())
        #expect(status.condition == .failed)
        #expect(status.message?.hasPrefix("build failed:") == true, "\(status.message ?? "")")
        #expect(status.memory.failure?.stage == .build)
        #expect(status.lastDeploy?.failedStage == .build)
        #expect(host.current() == nil)
        #expect(events.stageLines == ["fetch started", "fetch done", "build started", "build failed"])

        // The same desired state is held, not rebuilt.
        _ = await reconciler.pass()
        #expect(events.stageLines.count == 4)
        status = try #require(host.status())
        #expect(status.condition == .failed)
        #expect(status.message?.contains("not retried until the manifest or source changes") == true)

        // A fixed build deploys, and the failure is forgotten.
        try host.commitManifest()
        #expect(await reconciler.pass().converged)
        status = try #require(host.status())
        #expect(status.condition == .converged && status.memory.failure == nil)
    }

    @Test func aPushDuringTheBuildSupersedesTheDeployBeforeTheSwitch() async throws {
        let host = try PassSandbox()
        try host.commitSource(["index.html": "v1"])
        try host.commitManifest()
        let runtime = AgentRuntime(config: host.config)
        let reconciler = host.reconciler(runtime: runtime)
        #expect(await reconciler.pass().converged)
        let first = host.current()

        // v2 builds slowly; while it builds, a push announces another manifests commit.
        try host.commitSource(["index.html": "v2"])
        try host.commitManifest(build: "sleep 1; mkdir -p dist && cp index.html dist/")
        let events = EventLog()
        reconciler.onEvent = { events.append($0) }
        let pass = Task { await reconciler.pass() }
        for _ in 0..<200 where !events.stageLines.contains("build started") { try await Task.sleep(for: .milliseconds(20)) }
        runtime.announce(commit: "0123456789abcdef0123456789abcdef01234567")
        let result = await pass.value

        #expect(!result.converged)
        let status = try #require(host.status())
        #expect(status.condition == .interrupted)
        #expect(status.message == "superseded by manifests commit 0123456789ab before the switch; the next pass deploys it")
        #expect(status.memory.failure == nil, "a superseded deploy is not a failure")
        #expect(host.current() == first, "current never moves to a superseded release")
        #expect(!events.stageLines.contains("switch started"))
        #expect(!FileManager.default.fileExists(atPath: host.appsRoot + "/demo/.slipway/staging/" + (status.lastDeploy?.release?.description ?? "x")))
    }

    @Test func switchingToAKeptReleaseRunsTheRollbackStagesAndIsReportedLikeADeploy() async throws {
        let host = try PassSandbox()
        let v1 = try host.commitSource(["index.html": "v1"])
        try host.commitManifest(ref: v1)
        let reconciler = host.reconciler()
        #expect(await reconciler.pass().converged)
        let first = try #require(host.current())
        let v2 = try host.commitSource(["index.html": "v2"])
        try host.commitManifest(ref: v2)
        #expect(await reconciler.pass().converged)
        #expect(host.current() != first)

        // Back to v1: its release is kept, so no build — the rollback's list runs instead.
        let events = EventLog()
        reconciler.onEvent = { events.append($0) }
        try host.commitManifest(ref: v1)
        #expect(await reconciler.pass().converged)
        #expect(host.current() == first)
        #expect(events.stageLines == ["switch started", "switch done"])
        let deploy = try #require(host.status()?.lastDeploy)
        #expect(deploy.kind == .rollback && deploy.result == .succeeded)
        #expect(deploy.stages.map(\.stage) == [.switch])
        #expect(events.all.contains { $0.event == .deploy && $0.action == "rollback" && $0.state == "succeeded" })
        let metrics = reconciler.metrics.registry
        var text: [UInt8] = []
        metrics.emit(into: &text)
        #expect(String(decoding: text, as: UTF8.self).contains("slipway_rollbacks_total{app=\"demo\",result=\"succeeded\"} 1"))
    }
}
