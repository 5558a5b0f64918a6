import Foundation
import Logging
import SlipwayCore

/// Keeping each app's workers on what `current` and the manifest say, every pass: after an
/// agent restart, a rollback, an env_file edit, `slipway reload APP`, or a manifest that drops
/// its workers. A deploy's or rollback's own reload and verify stages run in their stage list;
/// a pass whose run just rolled the workers skips this.
extension Reconciler {
    func superviseWorkers(_ app: AppName, desired: DesiredApp, supervisor: Supervisor,
                          status: inout AppStatus, memory: inout AppMemory, logger: Logger) async {
        let resolved: ResolvedApp
        switch desired {
        case .removed:
            await supervisor.stop(app, reason: "no manifest declares the app any more")
            return
        case .notOnThisHost:
            await supervisor.stop(app, reason: "the manifest no longer schedules the app on this host")
            return
        case .resolved(let value):
            resolved = value
        case .invalid, .unresolved, .untrusted:
            // Nothing new is known: whatever runs keeps running.
            return
        }
        let store = ReleaseStore(layout: layout(app))
        guard resolved.manifest.backend?.workers != nil else {
            await supervisor.stop(app, reason: "the manifest declares no backend.command")
            return
        }
        guard let current = store.current() else { return }
        let target: WorkerTarget
        do {
            guard let made = try WorkerTarget.make(manifest: resolved.manifest, release: current,
                                                   sha: store.record(current)?.source.sha, config: config) else { return }
            target = made
        } catch {
            status.condition = .failed
            status.message = "reload failed: \(error)"
            logger.error("cannot run workers: \(error)", metadata: ["stage": "reload"])
            return
        }
        let force = memory.reloadRequested == true
        memory.reloadRequested = nil
        if memory.workerFailure == target.id && !force {
            if status.condition == .converged || status.condition == .pinned {
                status.condition = .failed
                status.message = "reload of generation \(target.id) failed before; not retried until the manifest, the env_file or "
                    + "the release changes; 'slipway reload \(app)' tries once more"
            }
            return
        }
        let workers = await supervisor.supervisor(for: app)
        var outcome = await workers.reload(to: target, force: force)
        if case .unchanged = outcome, !force {
            memory.workerFailure = nil
            return
        }
        if case .done = outcome { logger.info("workers now run release \(current) (generation \(target.id))", metadata: ["stage": "reload"]) }
        if outcome.succeeded { outcome = await workers.verify() }
        if let (stage, reason) = outcome.failure, Task.isCancelled {
            // Stopped by the agent's shutdown, not broken: the next start tries again.
            status.condition = .interrupted
            status.message = "\(stage) was stopped by the agent's shutdown: \(reason)"
        } else if case .blocked(let reason) = outcome {
            // Not the generation's fault: every pass tries again (once the operator has stopped
            // the other program, the next poll brings the workers up with no command).
            memory.workerFailure = nil
            status.condition = .failed
            status.message = "reload failed: \(reason); tried again on every pass"
            logger.error("reload failed: \(reason); tried again on every pass", metadata: ["stage": "reload"])
        } else if let (stage, reason) = outcome.failure {
            memory.workerFailure = target.id
            status.condition = .failed
            status.message = "\(stage) failed: \(reason); the workers that ran before keep serving"
            logger.error("\(stage) failed: \(reason)", metadata: ["stage": "\(stage)"])
        } else {
            memory.workerFailure = nil
            if force { logger.info("reloaded every worker on request", metadata: ["stage": "reload"]) }
        }
        var event = AgentEvent(.reload, app: app.value, state: outcome.succeeded ? "succeeded" : "failed")
        event.release = current.description
        if let (_, reason) = outcome.failure { event.error = reason }
        onEvent(event)
    }
}

