import Foundation
import Logging
import SlipwayCore

/// The contract step outside a deploy: a release whose contract failed stays live and degraded,
/// and every later pass runs the contract again once its workers are healthy, until it passes.
extension Reconciler {
    func contract(_ app: ResolvedApp, release: ReleaseID, status: inout AppStatus, logger: Logger) async {
        guard let migrate = app.manifest.migrate else { return }
        let store = ReleaseStore(layout: layout(app.manifest.app))
        logger.info("running the contract step of \(release) again", metadata: ["stage": "contract"])
        do {
            let (_, timing) = try await StageReporter(app: app.manifest.app, logger: logger, onEvent: onEvent).run(.contract, release: release) {
                try await ContractStage.contract(app, migrate: migrate, release: release, store: store, config: config)
            }
            metrics.stageFinished(.contract, milliseconds: timing.milliseconds)
            status.condition = .converged
        } catch {
            status.condition = Task.isCancelled ? .interrupted : .degraded
            status.message = OutcomeRules.contractFailed("\(error)", release: release)
        }
    }
}
