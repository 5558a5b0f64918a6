import Foundation
import SlipwayCore

/// contract: once the new release serves and is healthy, `migrate.contract` removes what the
/// old code needed; the release is marked contracted (the boundary a rollback does not cross
/// without --force). A failure leaves the release live, degraded; every later pass retries.
struct ContractStage: StageStep {
    let stage = Stage.contract

    func run(_ context: inout DeployContext) async throws {
        guard let manifest = context.manifest, let migrate = manifest.migrate else { return }
        guard case .deploy(let app, _) = context.kind else { return }
        let environment = try? context.appEnvironment()
        try await Self.contract(app, migrate: migrate, release: context.release, store: context.store, config: context.config, environment: environment)
    }

    /// The step itself, for a deploy and for the retry on a later pass alike.
    static func contract(_ app: ResolvedApp, migrate: Migrate, release: ReleaseID, store: ReleaseStore, config: AgentConfig,
                         environment: AppEnvironment? = nil) async throws {
        do {
            try await MigrationRunner.forRelease(release, of: app, migrate: migrate, config: config, environment: environment).run(.contract)
            try store.markContracted(release)
        } catch {
            throw StageFailure(stage: .contract, message: "\(error)")
        }
    }
}
