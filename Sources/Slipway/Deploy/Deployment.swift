import Foundation
import Logging
import SlipwayCore

/// One deploy of one app: the stages `StagePlan.deploy` lists for it, run in order by the
/// `StageRunner`, each in its own file under Stages/:
///
///     fetch → build → expand? → switch → reload? → verify? → contract? → prune
///
/// Anything that fails before the switch leaves `current` exactly as it was; a failed reload
/// or verify switches `current` back and leaves the old workers serving; a failed contract
/// leaves the new release live (degraded). `Rollback` is the same run with a kept release.
struct Deployment {
    let app: ResolvedApp
    let store: ReleaseStore
    let agent: DeployContext.Agent
    let manifestsCommit: String
    /// The newer manifests commit a push announced during this deploy, if any.
    var supersededBy: @Sendable () -> String? = { nil }
    /// Where stage events go (the running agent's event stream, or a CLI printing them).
    var onEvent: @Sendable (AgentEvent) -> Void = { _ in }

    /// The step that runs each stage.
    static func steps(_ stages: [Stage]) -> [any StageStep] {
        stages.map { stage -> any StageStep in
            switch stage {
            case .fetch: return FetchStage()
            case .build: return BuildStage()
            case .expand: return ExpandStage()
            case .switch: return SwitchStage()
            case .reload: return ReloadStage()
            case .verify: return VerifyStage()
            case .contract: return ContractStage()
            case .prune: return PruneStage()
            }
        }
    }

    func run() async -> (outcome: DeployOutcome, result: DeployResult) {
        let name = app.manifest.app
        // Failed attempts never publish a release but keep their log: their ids stay taken too.
        let logDir = BuildLog.directory(stateDir: agent.config.stateDir, app: name)
        let id = ReleaseID.next(at: .now, sha: app.sourceSHA, existing: store.releaseIDs() + BuildLog.releases(in: logDir))
        var context = DeployContext(agent: agent, kind: .deploy(app, manifestsCommit: manifestsCommit), app: name, store: store,
                                    release: id, sha: app.sourceSHA, logPath: BuildLog.path(in: logDir, release: id), previous: store.current())
        let stages = StagePlan.deploy(app.manifest, role: app.migrationRole, runsWorkers: agent.supervisor != nil)
        let runner = StageRunner(reporter: StageReporter(app: name, logger: agent.logger, onEvent: onEvent), supersededBy: supersededBy)
        let result = await runner.run(Self.steps(stages), &context)
        if let staging = context.staging { try? SafeTree.remove(staging) }
        // Another host contracts once its own verify passed: from here on this host treats the
        // release as the boundary a rollback does not cross without --force.
        if result.isLive, let migrate = app.manifest.migrate, migrate.contract != nil, !app.migrationRole.contracts(migrate) {
            try? store.markContracted(id)
        }
        return (DeployOutcome(result, kind: .deploy, release: id, sha: app.sourceSHA, published: store.releaseIDs().contains(id),
                              logPath: context.logPath, stages: context.timings), result)
    }
}

extension DeployOutcome {
    /// What `status`, the state file and the hooks keep of a run.
    init(_ result: DeployResult, kind: Kind, release: ReleaseID, sha: String, published: Bool, logPath: String?,
         stages: [ReleaseRecord.StageTiming]) {
        var error: String?
        switch result {
        case .succeeded: error = nil
        case .failed(_, let reason): error = reason
        case .degraded(let reason): error = reason
        case .superseded(let newer): error = OutcomeRules.superseded(by: newer)
        case .cancelled(let stage): error = "\(stage) was stopped by the agent's shutdown"
        }
        self.init(release: result.isLive || published ? release : nil, sha: sha, result: result.isLive ? .succeeded : .failed,
                  failedStage: result.stoppedStage ?? (result.isLive ? nil : .switch), error: error,
                  logPath: logPath.flatMap { FileOps.exists($0) ? $0 : nil }, stages: stages, finishedAt: .now,
                  kind: kind == .deploy ? nil : kind)
    }
}
