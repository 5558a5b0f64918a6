import Foundation
import Logging
import SlipwayCore

/// Going back to a kept release — `slipway rollback`, a pin that `current` drifted from, or a
/// kept release that already realises the manifest: the deploy's run without fetch, build and
/// migrations (`StagePlan.rollback`):
///
///     switch → reload? → verify?
///
/// Reported like a deploy (stage lines, events, metrics, `status`, `on_deploy` hooks). Workers
/// that refuse the kept release are not switched back from: the ones that ran before keep
/// serving, and the generation is remembered (see `OutcomeRules.afterRollback`).
struct Rollback {
    let app: AppName
    /// How the app's workers run, when the manifests say (nil: only `current` moves).
    let manifest: Manifest?
    let store: ReleaseStore
    let agent: DeployContext.Agent
    let target: ReleaseID
    var onEvent: @Sendable (AgentEvent) -> Void = { _ in }

    struct Ran {
        var outcome: DeployOutcome
        var result: DeployResult
        /// The worker generation the kept release got, for remembering a refusal.
        var generation: String?
    }

    func run() async -> Ran {
        let sha = store.record(target)?.source.sha ?? ""
        var context = DeployContext(agent: agent, kind: .rollback(manifest), app: app, store: store, release: target, sha: sha,
                                    logPath: nil, previous: store.current())
        let stages = StagePlan.rollback(manifest, runsWorkers: agent.supervisor != nil)
        let runner = StageRunner(reporter: StageReporter(app: app, logger: agent.logger, onEvent: onEvent))
        let result = await runner.run(Deployment.steps(stages), &context)
        return Ran(outcome: DeployOutcome(result, kind: .rollback, release: target, sha: sha, published: true, logPath: nil,
                                          stages: context.timings),
                   result: result, generation: context.workers?.id)
    }
}
