import Foundation
import SlipwayCore

/// expand: the release is published first (`pending`, so nothing switches to it before its
/// schema exists), then `migrate.expand` runs in its directory — or, on a host left out of
/// `migrate.hosts`, `migrate.check` is run until another host's expand has passed.
/// A failure marks the release failed; `current` and the workers are untouched.
struct ExpandStage: StageStep {
    let stage = Stage.expand

    func run(_ context: inout DeployContext) async throws {
        guard case .deploy(let app, let manifestsCommit) = context.kind, let migrate = app.manifest.migrate,
              let staging = context.staging else { return }
        try ReleaseRecords.write(for: app, id: context.release, manifestsCommit: manifestsCommit, timings: context.timings,
                                 result: .pending, into: staging + "/release")
        try context.store.publish(staging + "/release", as: context.release)
        context.published = true
        do {
            let runner = try MigrationRunner.forRelease(context.release, of: app, migrate: migrate, config: context.config,
                                                        environment: context.appEnvironment())
            if app.migrationRole == .waits {
                let waited = try await runner.waitForCheck()
                context.logger.info("schema ready after waiting \(DurationText.format(waited)) for another host's expand", metadata: ["stage": "expand"])
            } else {
                try await runner.run(.expand)
            }
            try context.store.markExpanded(context.release)
        } catch {
            // A step cut short by the agent's shutdown says nothing about the release: it stays
            // pending (never switched to) and the next start deploys anew.
            if !Task.isCancelled { try? context.store.markFailed(context.release, stage: .expand, reason: "\(error)") }
            throw StageFailure(stage: .expand, message: "\(error); current and the workers are untouched")
        }
    }
}
