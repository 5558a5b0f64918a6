import Foundation
import Synchronization
import Testing
@testable import Slipway
import SlipwayCore

/// Issue 20: a prune moves releases into the trash and the deleting happens after the pass
/// (`TrashCollector`); the app's next pass waits for it before it touches the app's store.
@Suite(.timeLimit(.minutes(2)))
struct TrashCollectorTests {
    static func manifest(_ sandbox: PassSandbox) -> [String: String] {
        ["manifests/demo.yaml": "app: demo\nsource: {repo: \(sandbox.source), ref: main}\nreleases: {keep: 1}\nbackend: {dir: .}\n"]
    }

    static func tree(version: Int) -> [String: String] {
        var files = ["changes.txt": "version \(version)\n"]
        for index in 0..<200 { files["pkg\(index / 50)/file\(index).js"] = "module.exports = \(index);\n" }
        return files
    }

    @Test func aPrunedReleaseIsDeletedAfterThePassAndOnlyItsObjectsGo() async throws {
        let sandbox = try PassSandbox()
        try sandbox.commitManifests(Self.manifest(sandbox))
        let runtime = AgentRuntime(config: sandbox.config)
        let store = ReleaseStore(layout: AppLayout(appsRoot: sandbox.appsRoot, app: AppName("demo")!))
        for version in 1...3 {
            try sandbox.commitSource(Self.tree(version: version))
            let result = await sandbox.reconciler(runtime: runtime).pass()
            #expect(result.converged, "\(result.unsettled)")
        }
        // keep 1 keeps current and the previous good release; the first left releases/ in the pass.
        #expect(store.releaseIDs().count == 2)
        await runtime.trash.idle(store)
        #expect(!FileOps.exists(store.layout.trash))
        // 200 files the same in both kept releases, and changes.txt in two versions: the first
        // release's version is collected, nothing the kept releases link is.
        let objects = try FileManager.default.subpathsOfDirectory(atPath: store.layout.objects).filter { $0.contains("/") }
        #expect(objects.count == 202)
        for id in store.releaseIDs() {
            #expect(try String(contentsOfFile: store.layout.release(id) + "/backend/pkg3/file199.js", encoding: .utf8) == "module.exports = 199;\n")
        }
        await runtime.supervisor.stopAll()
    }

    @Test func collectionsOfOneAppRunOneAfterTheOtherAndItsNextPassWaitsForThem() async throws {
        let sandbox = try PassSandbox()
        try sandbox.commitManifests(Self.manifest(sandbox))
        try sandbox.commitSource(Self.tree(version: 1))
        let runtime = AgentRuntime(config: sandbox.config)
        #expect(await sandbox.reconciler(runtime: runtime).pass().converged)
        let store = ReleaseStore(layout: AppLayout(appsRoot: sandbox.appsRoot, app: AppName("demo")!))
        let staging = store.layout.staging
        let clock = ContinuousClock()
        let seen = Mutex<(firstEnded: ContinuousClock.Instant?, secondStarted: ContinuousClock.Instant?, stagingDuringWork: Bool)>((nil, nil, false))
        runtime.trash.collect(store, logger: .init(label: "test")) {
            // Held up for 0.8 s, looking for the next pass's release in staging meanwhile.
            let until = clock.now + .milliseconds(800)
            while clock.now < until {
                if !((try? FileManager.default.contentsOfDirectory(atPath: staging)) ?? []).isEmpty {
                    seen.withLock { $0.stagingDuringWork = true }
                }
                usleep(10_000)
            }
            seen.withLock { $0.firstEnded = clock.now }
        }
        runtime.trash.collect(store, logger: .init(label: "test")) {
            seen.withLock { $0.secondStarted = clock.now }
        }
        try sandbox.commitSource(Self.tree(version: 2))
        let started = clock.now
        let result = await sandbox.reconciler(runtime: runtime).pass()
        let took = clock.now - started
        #expect(result.converged, "\(result.unsettled)")
        let observed = seen.withLock { $0 }
        #expect(!observed.stagingDuringWork, "the pass exported into staging while the collection ran")
        let ended = try #require(observed.firstEnded), second = try #require(observed.secondStarted)
        #expect(second >= ended, "the second collection started before the first ended")
        #expect(took >= .milliseconds(600), "the pass took \(took): it did not wait for the collections")
        #expect(store.releaseIDs().count == 2)
        await runtime.supervisor.stopAll()
    }
}
