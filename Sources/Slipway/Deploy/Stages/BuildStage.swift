import Foundation
import SlipwayCore

/// build: the manifest's build steps, as the app's account, in the exported tree; then the
/// tree is sealed and laid out as a release (see `ReleaseAssembly`), and the workers it will
/// get are worked out, so a problem with them (an account, an env_file) fails before the switch.
struct BuildStage: StageStep {
    let stage = Stage.build

    func run(_ context: inout DeployContext) async throws {
        guard case .deploy(let app, _) = context.kind, let staging = context.staging, let logPath = context.logPath else { return }
        let account = try appAccount(app, config: context.config)
        context.account = account
        try context.store.restrict(staging, to: account)
        let assembly = ReleaseAssembly(app: app, store: context.store, logger: context.logger)
        try await BuildSteps(app: app, store: context.store, config: context.config)
            .run(in: staging + "/src", release: context.release, staging: staging, logPath: logPath, account: account)
        // With no build step nothing but the export wrote the tree (root's directories, the
        // store's read-only objects): a walk of every file would find nothing to seal.
        if app.manifest.frontend?.build != nil || app.manifest.backend?.build != nil { try assembly.seal(staging + "/src") }
        try assembly.assemble(staging: staging, account: account)
        context.workers = try WorkerTargets.forRelease(&context)
    }

    /// The account the app's code runs as (nil when the agent is not root); see `AppAccount.forApp`.
    private func appAccount(_ app: ResolvedApp, config: AgentConfig) throws -> AppAccount? {
        do {
            return try AppAccount.forApp(app.manifest.app, declared: app.manifest.backend?.user, config: config, manifestPath: app.manifestPath)
        } catch {
            throw StageFailure(stage: .build, message: "\(error)")
        }
    }
}

/// The workers a run's release gets; nil when none run here (a one-shot pass, no `backend.command`).
enum WorkerTargets {
    static func forRelease(_ context: inout DeployContext) throws -> WorkerTarget? {
        guard context.agent.supervisor != nil, let manifest = context.manifest,
              manifest.backend?.workers != nil else { return nil }
        do {
            return try WorkerTarget.make(manifest: manifest, release: context.release, sha: context.sha, config: context.config,
                                         environment: context.appEnvironment())
        } catch {
            throw StageFailure(stage: .reload, message: "\(error)")
        }
    }
}
