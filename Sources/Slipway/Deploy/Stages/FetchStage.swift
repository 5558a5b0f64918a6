import Foundation
import SlipwayCore

/// fetch: the source commit into a fresh staging directory. The network part (the mirror's
/// sync with the remote) ran when the pass resolved the app's ref, once per remote per pass;
/// its time is this stage's too. The export links files from the app's object store.
struct FetchStage: StageStep {
    let stage = Stage.fetch

    func earlierWork(_ context: DeployContext) -> Duration {
        guard let repo = context.manifest?.source.repo else { return .zero }
        return context.agent.mirrors.syncTime(of: repo) ?? .zero
    }

    func run(_ context: inout DeployContext) async throws {
        let staging = try context.store.makeStaging(for: context.release)
        context.staging = staging
        guard let repoURL = context.manifest?.source.repo else { return }
        let repo = try context.agent.mirrors.open(repoURL)
        await context.agent.trash.idle(context.store)  // no object of the store goes while the export links them
        let summary = try TreeExporter(repository: repo, store: ObjectStore(root: context.store.layout.objects))
            .export(commit: context.sha, into: staging + "/src")
        context.logger.debug("exported", metadata: [
            "files": "\(summary.files)", "linked": "\(summary.objects.linked)", "written": "\(summary.objects.written)",
        ])
    }
}
