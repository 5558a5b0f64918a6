import Foundation
import Testing

/// Removals are deliberate: an app no longer declared keeps serving through removal_grace, a
/// commit that removes most of the host's apps waits for `slipway apply --allow-removals`, and
/// a rename starts the new app before the old one stops.
@Suite(.endToEnd)
struct RemovalTests {
    /// The example app with workers, and a short grace so the tests see it end.
    func workerApp(grace: String = "3s") throws -> WorkerApp {
        let app = try WorkerApp(instances: 2)
        let config = try #require(app.f.read(app.f.configPath))
        try app.f.write(config + "\nremoval_grace: \(grace)\n", to: app.f.configPath)
        return app
    }

    func condition(_ app: WorkerApp, _ name: String = "demo") -> String? {
        try? app.f.appStatus(name)["condition"] as? String
    }

    @Test func aSingleRemovalWaitsTheGraceAndPuttingTheManifestBackCancelsIt() throws {
        let app = try workerApp()
        try app.start()
        let pids = try app.workerPIDs()
        let manifest = try #require(app.f.read(app.f.manifestsRepo + "/manifests/demo.yaml"))

        try app.f.removeManifest("demo.yaml")
        _ = try app.f.slipway(["deploy"])
        #expect(app.f.waitUntil(seconds: 20) { condition(app) == "removing" })
        let message = (try? app.f.appStatus()["message"] as? String) ?? ""
        #expect(message.contains("removing in") && message.contains("put the manifest back to cancel"), "\(message)")
        #expect(try app.workerPIDs() == pids)
        #expect(try app.get("/api/hello").status == 200)

        // Back within the grace: nothing was stopped, nothing restarts.
        try app.f.commitManifest("demo.yaml", manifest)
        _ = try app.f.slipway(["deploy"])
        #expect(app.f.waitUntil(seconds: 20) { condition(app) == "converged" })
        #expect(try app.workerPIDs() == pids)

        // Removed again: after the grace (3 s, no push, no poll) the workers stop, the files stay.
        try app.f.removeManifest("demo.yaml")
        let removedAt = Date()
        _ = try app.f.slipway(["deploy"])
        #expect(app.f.waitUntil(seconds: 30) { condition(app) == "removed" })
        #expect(Date().timeIntervalSince(removedAt) >= 3)
        #expect(app.f.waitUntil(seconds: 20) { pids.allSatisfy { !WorkerApp.isRunning($0) } })
        #expect(app.f.current() != nil)
        #expect(app.stop(), "the agent did not exit on SIGTERM")
    }

    @Test func removingEveryManifestInOneCommitStopsNothingUntilConfirmed() throws {
        let app = try workerApp()
        // A second app on the host, without workers.
        try app.f.commitManifest("other.yaml", app.f.manifest(app: "other", ref: "main", frontendBuild: "mkdir -p dist && echo other > dist/index.html", backendBuild: "true"))
        try app.start()
        #expect(app.f.waitUntil(seconds: 60) { condition(app, "other") == "converged" })
        let pids = try app.workerPIDs()

        try app.f.git(["rm", "-q", "-r", "manifests"], in: app.f.manifestsRepo)
        try app.f.git(["commit", "-q", "-m", "oops: every manifest deleted"], in: app.f.manifestsRepo)
        let commit = try app.f.git(["rev-parse", "HEAD"], in: app.f.manifestsRepo)
        _ = try app.f.slipway(["deploy"])
        #expect(app.f.waitUntil(seconds: 20) { condition(app) == "removing" && condition(app, "other") == "removing" })
        let message = (try? app.f.appStatus()["message"] as? String) ?? ""
        #expect(message.contains("removes 2 of this host's 2 apps") && message.contains("slipway apply --allow-removals \(commit.prefix(12))"), "\(message)")
        let status = try app.f.slipway(["status"]).stdout
        #expect(status.contains("! manifests commit \(commit.prefix(12)) removes 2 of this host's 2 apps: not applied"), "\(status)")
        #expect(try app.metrics().contains("slipway_removals_held 2"))
        // Held, not waiting: even after the grace, nothing stops.
        usleep(4_000_000)
        _ = try app.f.slipway(["deploy"])
        usleep(500_000)
        #expect(condition(app) == "removing")
        #expect(try app.workerPIDs() == pids)
        #expect(try app.get("/api/hello").status == 200)

        // Confirmed: the grace runs, then both go.
        let confirm = try app.f.slipway(["apply", "--allow-removals", String(commit.prefix(12))])
        #expect(confirm.status == 0, "\(confirm.output)")
        #expect(app.f.waitUntil(seconds: 30) { condition(app) == "removed" && condition(app, "other") == "removed" })
        #expect(app.f.waitUntil(seconds: 20) { pids.allSatisfy { !WorkerApp.isRunning($0) } })
        #expect(try app.metrics().contains("slipway_removals_held 0"))
        #expect(app.stop(), "the agent did not exit on SIGTERM")
    }

    /// demo → demo2 with the same source and listen, under load: the new app is built and
    /// serving before the old one's grace ends, so no request fails.
    @Test func aRenameKeepsServingUnderLoad() throws {
        let app = try workerApp(grace: "4s")
        try app.start()
        let old = try app.workerPIDs()
        let load = try LoadRun(port: app.port, threads: 4, scratch: app.f.scratch)
        let manifest = try #require(app.f.read(app.f.manifestsRepo + "/manifests/demo.yaml"))
        try app.f.git(["rm", "-q", "manifests/demo.yaml"], in: app.f.manifestsRepo)
        try app.f.commitManifest("demo2.yaml", manifest.replacingOccurrences(of: "app: demo\n", with: "app: demo2\n"))
        let deploy = try app.f.slipway(["deploy", "--wait"], timeout: 120)
        #expect(deploy.status == 0, "\(deploy.output)")
        #expect(app.f.waitUntil(seconds: 60) { condition(app) == "removed" && condition(app, "demo2") == "converged" })
        #expect(app.f.waitUntil(seconds: 20) { old.allSatisfy { !WorkerApp.isRunning($0) } })
        usleep(1_000_000)
        let summary = try load.finish()
        #expect(summary.failed == 0, "errors: \(summary.errors)")
        #expect(summary.requests > 100)
        let workers = (try app.f.appStatus("demo2")["workers"] as? [String: Any])?["workers"] as? [[String: Any]] ?? []
        #expect(workers.count == 2)
        #expect(app.stop(), "the agent did not exit on SIGTERM")
    }
}
