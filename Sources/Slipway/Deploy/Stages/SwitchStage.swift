import Foundation
import SlipwayCore

/// switch: `current` names the release, in one rename(2). A deploy's release is published
/// here (unless its expand did), with its record; a served frontend's files join the archive
/// first, so a page loaded from it still finds its assets if `current` is switched back.
struct SwitchStage: StageStep {
    let stage = Stage.switch

    func run(_ context: inout DeployContext) async throws {
        if case .deploy(let app, let manifestsCommit) = context.kind, let staging = context.staging, !context.published {
            try ReleaseRecords.write(for: app, id: context.release, manifestsCommit: manifestsCommit, timings: context.timings,
                                     result: .succeeded, into: staging + "/release")
            try context.store.publish(staging + "/release", as: context.release)
            context.published = true
        }
        if context.config.nginx != nil, let manifest = context.manifest, manifest.frontend?.serve != nil, !context.isRollback {
            // The releases the prune stage will keep, so the pass's nginx step finds the archive done.
            let inUse = await context.agent.supervisor?.existing(context.store.layout.app)?.releasesInUse() ?? []
            let kept = context.store.kept(once: context.release, keep: manifest.keep, inUse: inUse)
            try? FrontendArchive(layout: context.store.layout).refresh(releases: kept)
        }
        try context.store.switchCurrent(to: context.release)
        if let staging = context.staging {
            try? SafeTree.remove(staging)
            context.staging = nil
        }
    }
}
