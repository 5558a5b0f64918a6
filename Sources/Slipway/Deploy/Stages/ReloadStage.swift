import Foundation
import SlipwayCore

/// reload: the app's workers are rolled onto the release, one slot at a time, each new worker
/// ready before an old one drains. If they refuse it, a deploy switches `current` back
/// (`SwitchBack`); a rollback leaves the workers that ran before serving.
struct ReloadStage: StageStep {
    let stage = Stage.reload

    func run(_ context: inout DeployContext) async throws {
        guard let supervisor = context.agent.supervisor else { return }
        // A deploy worked its workers out during the build; a kept release's are worked out now.
        if context.workers == nil, context.isRollback { context.workers = try WorkerTargets.forRelease(&context) }
        guard let workers = context.workers else { return }
        let app = await supervisor.supervisor(for: context.app)
        if let (stage, reason) = await app.reload(to: workers).failure {
            throw SwitchBack.after(stage, reason: reason, context)
        }
    }
}

/// verify: every worker alive and, with `backend.health`, each one healthy on its own socket.
struct VerifyStage: StageStep {
    let stage = Stage.verify

    func run(_ context: inout DeployContext) async throws {
        guard let supervisor = context.agent.supervisor, context.workers != nil else { return }
        let app = await supervisor.supervisor(for: context.app)
        if let (stage, reason) = await app.verify().failure {
            throw SwitchBack.after(stage, reason: reason, context)
        }
    }
}

/// After the workers refused a deploy's release: `current` goes back to where it was (or is
/// removed on a first deploy), and the release is marked failed so it is not switched to
/// again for the same desired state.
enum SwitchBack {
    static func after(_ stage: Stage, reason: String, _ context: DeployContext) -> StageFailure {
        guard !context.isRollback else { return StageFailure(stage: stage, message: reason) }
        var message = reason
        do {
            if let previous = context.previous {
                try context.store.switchCurrent(to: previous)
                message += "; current switched back to \(previous)"
            } else {
                context.store.unsetCurrent()
                message += "; current removed (there was no earlier release)"
            }
            // A rollout cut short by the agent's shutdown says nothing about the release.
            if !Task.isCancelled { try context.store.markFailed(context.release, stage: stage, reason: reason) }
        } catch {
            message += "; switching back failed: \(error)"
        }
        context.logger.error("\(stage) failed: \(message)", metadata: ["stage": "\(stage)"])
        return StageFailure(stage: stage, message: message)
    }
}
