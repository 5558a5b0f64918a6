import Foundation
import Logging
import SlipwayCore

/// prune: releases beyond `keep` (never `current`, the previous good one, or one a worker
/// still runs) leave `releases/` by a rename into the trash and their build logs go; the
/// trash is emptied, and the objects no release links any more collected, after the pass
/// (`TrashCollector`).
struct PruneStage: StageStep {
    let stage = Stage.prune

    func run(_ context: inout DeployContext) async throws {
        guard let manifest = context.manifest else { return }
        try await Pruning(store: context.store, stateDir: context.config.stateDir, supervisor: context.agent.supervisor,
                          trash: context.agent.trash, logger: context.logger).run(keep: manifest.keep)
    }
}

/// The one prune: the stage above, and the quiet retention check of a pass with nothing to deploy.
struct Pruning {
    let store: ReleaseStore
    let stateDir: String
    let supervisor: Supervisor?
    let trash: TrashCollector
    let logger: Logger

    func run(keep: Int) async throws {
        let app = store.layout.app
        let inUse = await supervisor?.existing(app)?.releasesInUse() ?? []
        let pruned = try store.applyRetention(keep: keep, logDirectory: BuildLog.directory(stateDir: stateDir, app: app), inUse: inUse)
        guard !pruned.isEmpty else { return }
        trash.collect(store, logger: logger)
        logger.info("pruned \(pruned.map(\.description).joined(separator: ", "))", metadata: ["stage": "prune"])
    }
}
