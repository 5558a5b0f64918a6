import Foundation
import Logging
import SlipwayCore

/// The contract step outside a deploy: a release whose contract failed stays live and degraded,
/// and every later pass runs the contract again once its workers are healthy, until it passes.
extension Reconciler {
    func contract(_ app: ResolvedApp, release: ReleaseID, status: inout AppStatus, logger: Logger) async {
        guard let migrate = app.manifest.migrate else { return }
        let store = ReleaseStore(layout: layout(app.manifest.app))
        let name = app.manifest.app
        let logPath = "\(config.stateDir)/logs/\(name)/\(release).build.log"
        var started = AgentEvent(.stage, app: name.value, stage: .contract, state: "started")
        started.release = release.description
        onEvent(started)
        let clock = ContinuousClock.now
        var stageLogger = logger
        stageLogger[metadataKey: "stage"] = "contract"
        stageLogger.info("running the contract step of \(release) again")
        do {
            let environment = try AppEnvironment.make(manifest: app.manifest, release: release, sha: app.sourceSHA, config: config)
            try await MigrationRunner(migrate: migrate, directory: store.layout.release(release) + "/backend",
                                      environment: environment, logPath: logPath,
                                      marker: store.layout.staging + "/contract-\(release)").run(.contract)
            try store.markContracted(release)
            let elapsed = (ContinuousClock.now - clock).milliseconds
            var done = AgentEvent(.stage, app: name.value, stage: .contract, state: "done")
            done.milliseconds = elapsed
            onEvent(done)
            metrics.stageFinished(.contract, milliseconds: elapsed)
            stageLogger.info("done in \(DurationText.format(.milliseconds(elapsed)))")
            status.condition = .converged
        } catch {
            var failed = AgentEvent(.stage, app: name.value, stage: .contract, state: "failed")
            failed.milliseconds = (ContinuousClock.now - clock).milliseconds
            failed.error = "\(error)"
            onEvent(failed)
            stageLogger.error("failed: \(error)")
            status.condition = Task.isCancelled ? .interrupted : .degraded
            status.message = Self.contractFailed("\(error)", release: release)
        }
    }

    static func contractFailed(_ error: String, release: ReleaseID?) -> String {
        "contract failed: \(error)\nrelease \(release.map(\.description) ?? "?") stays live (it works with the expanded schema); "
            + "the contract step runs again on the next pass"
    }
}
