import Foundation
import SlipwayCore

/// Rolling an app's workers onto a new target, one slot at a time, and judging the result
/// (`verify`); on a failure, going back to the target before.
extension AppSupervisor {
    /// Brings the workers to `target`, one slot at a time: start the new worker, wait until it
    /// is ready and healthy (and has served `ready.min_ready` beside the old one, healthy
    /// throughout), then stop the old one. On a failure the new workers are stopped and the slots
    /// already moved go back to the previous target, so the old release keeps serving. `force`
    /// replaces workers that already run the target (`slipway reload`).
    func reload(to target: WorkerTarget, force: Bool = false) async -> RolloutResult {
        await exclusively {
            startMonitor()
            // Workers taken over from the agent's previous image (issue 19) run with no target
            // yet: when they run this generation, it is what a failed start goes back to, so
            // a slot that fails to start never stops them.
            let previous = self.target ?? (slots.values.contains { $0.running?.generation == target.id } ? target : nil)
            let result = await rollout(to: target, force: force)
            metrics.rolloutFinished(app: app, stage: .reload, succeeded: result.succeeded)
            if let (stage, reason) = result.failure {
                await revert(to: previous, from: target, after: "\(stage) failed: \(reason)")
                // Taken-over workers of this generation: the monitor looks after them (crash
                // restarts, memory) as the previous image's did.
                if self.target == nil, previous?.id == target.id {
                    self.target = target
                    fallback = .keep
                }
                // Orphans of a killed agent go once workers of ours serve: never more than `instances`.
                if slots.values.contains(where: { $0.running != nil }) {
                    await stopOrphans(timeout: target.workers.stop.timeout, signal: target.workers.stop.signal.number)
                }
                return result
            }
            self.target = target
            fallback = previous.map { $0.id == target.id ? .keep : .previous($0) } ?? .stop
            // New workers end a degraded state; a pass that changed nothing leaves a crash loop reported.
            if case .done = result { degraded = nil }
            await stopOrphans(timeout: target.workers.stop.timeout, signal: target.workers.stop.signal.number)
            return result
        }
    }

    /// After a reload: every worker alive, and (with `health`) each one healthy on its own
    /// socket. On a failure the workers go back to the target before the reload.
    func verify() async -> RolloutResult {
        await exclusively {
            guard let target else { return .failed(stage: .verify, reason: "no workers run") }
            var problem: String?
            for slot in 0..<target.count where slots[slot]?.running == nil {
                problem = "worker \(slot) is not running"
                break
            }
            if problem == nil, let health = target.workers.health {
                for slot in 0..<target.count {
                    guard let worker = slots[slot]?.worker, let own = worker.ownSocket else { continue }
                    let (result, failure) = await HealthProbe(endpoint: own.endpoint, health: health).judge(slot: slot)
                    worker.record(result)
                    if let failure {
                        problem = failure
                        break
                    }
                }
            }
            metrics.rolloutFinished(app: app, stage: .verify, succeeded: problem == nil)
            guard let problem else { return .unchanged }
            switch fallback {
            case .stop: await revert(to: nil, from: target, after: "verify failed: \(problem)")
            case .previous(let previous): await revert(to: previous, from: target, after: "verify failed: \(problem)")
            case .keep: log.note("verify failed: \(problem); the workers stay as they are (they run the same generation as before)")
            }
            return .failed(stage: .verify, reason: problem)
        }
    }

    /// Puts the workers back on `previous` after `target` failed. The failed generation's
    /// workers are stopped first, so none of them answers a client or stands in for another
    /// worker; then the empty slots get workers of `previous`, each judged on its own socket,
    /// and the workers of `previous` still running are left alone: a failed release is never
    /// the reason one of them stops. With no previous target (a first start) the failed workers
    /// are stopped and the socket is closed, so clients are refused at once.
    func revert(to previous: WorkerTarget?, from target: WorkerTarget, after failure: String) async {
        log.note(failure)
        // A failed reload of the same generation keeps what it started: it is that generation too.
        guard previous?.id != target.id else { return }
        for (slot, worker) in occupied where worker.generation == target.id {
            slots[slot]?.worker = nil
            slots[slot]?.restartAt = nil
            await stop(worker, as: target.workers.stop)
        }
        if let previous {
            log.note("going back to generation \(previous.id) (release \(previous.generation.release))")
            if let (_, again) = await rollout(to: previous, force: false).failure {
                log.note("going back failed too: \(again)")
                degraded = "\(failure), and going back to \(previous.generation.release) failed: \(again)"
            }
            self.target = previous
        } else {
            self.target = nil
            closeListenerIfIdle()
        }
    }

    func rollout(to target: WorkerTarget, force: Bool) async -> RolloutResult {
        do {
            try ensureListener(for: target)
        } catch {
            return .blocked(reason: "\(error)")
        }
        var replaced = 0, started = 0, stopped = 0
        for slot in 0..<target.count {
            // A crashed worker of this generation waiting out its backoff is the monitor's to
            // restart: a pass must not bypass the backoff of a crash loop.
            if let crashed = slots[slot]?.worker, crashed.exit != nil, slots[slot]?.restartAt != nil, crashed.generation == target.id, !force { continue }
            let old = slots[slot]?.running
            if let old, old.generation == target.id, !force { continue }
            if Task.isCancelled { return .failed(stage: .reload, reason: "the agent is shutting down") }
            if let problem = await startReady(slot: slot, target: target) {
                return .failed(stage: .reload, reason: "worker \(slot) " + problem)
            }
            if let old {
                replaced += 1
                drain(old, as: target.workers.stop)
            } else {
                started += 1
            }
            slots[slot]?.restartAt = nil
        }
        for slot in slots.keys.sorted() where slot >= target.count {
            if let worker = slots.removeValue(forKey: slot)?.worker {
                stopped += 1
                await stop(worker, as: target.workers.stop)
            }
        }
        await waitForDrains()
        closeRetiredListeners()
        if replaced + started + stopped == 0 { return .unchanged }
        log.note("rollout to generation \(target.id) done: \(replaced) replaced, \(started) started, \(stopped) stopped")
        return .done(replaced: replaced, started: started, stopped: stopped)
    }

    /// Starts a worker for `slot`; when it is ready (and healthy) it takes the slot.
    /// Returns what went wrong, or nil.
    func startReady(slot: Int, target: WorkerTarget) async -> String? {
        let worker: WorkerProcess
        let low = target.workers.startsAtLowPriority
        do {
            worker = try launch(slot: slot, target: target, startingLow: low)
        } catch {
            return "could not start: \(error)"
        }
        slots[slot, default: WorkerSlot()].incoming = (worker, false)
        save()
        defer { slots[slot]?.incoming = nil }
        let ready = target.workers.ready
        // The low priority is a courtesy to the workers serving, never the reason a start
        // fails: on a saturated host a worker not ready by half its timeout (5 s at most) gets
        // normal priority for the rest of it.
        let raise = Task { [pid = worker.pid] in
            guard low, (try? await Task.sleep(for: ready.lowPriorityPatience)) != nil else { return }
            StartPriority.restore(pid: pid)
        }
        defer { raise.cancel() }
        switch await worker.waitReady(notify: ready.notify, timeout: ready.timeout, settle: Workers.Ready.settle) {
        case .ready: break
        case .exited(let termination):
            let why = await StartFailureHint.explain(worker, target: target, log: log)
            return "\(termination.explanation) while starting" + (why.map { ": \($0)" } ?? "") + "; see 'slipway logs \(app)'"
        case .timedOut:
            await stop(worker, as: target.workers.stop)
            return "was not ready within \(DurationText.format(ready.timeout))" + (ready.notify ? " (no READY=1 on NOTIFY_SOCKET)" : "")
        }
        if let health = target.workers.health, let own = worker.ownSocket {
            // A worker still booting (gunicorn's workers come up after its master) may not answer
            // yet: unanswered checks are tried again until `ready.timeout`; an answer is final.
            let probe = HealthProbe(endpoint: own.endpoint, health: health)
            var (result, problem) = await probe.judge(slot: slot)
            while problem != nil, result.status == nil, worker.exit == nil, ContinuousClock.now < worker.started + ready.timeout {
                try? await Task.sleep(for: .milliseconds(100))
                (result, problem) = await probe.judge(slot: slot)
            }
            worker.record(result)
            if let problem {
                await stop(worker, as: target.workers.stop)
                // The rollout names the worker itself.
                return String(problem.dropFirst("worker \(slot) ".count))
            }
        }
        if let exit = worker.exit { return "\(exit.explanation) right after starting" }
        if low { StartPriority.restore(pid: worker.pid) }
        // `min_ready`: the new worker serves beside the one it replaces before that one stops,
        // and must stay healthy throughout (checked every second and at the end). It is not in
        // the slot yet, so one that exits or fails meanwhile fails the rollout with every old
        // worker still in its slot, serving.
        let minReady = target.workers.ready.minReady
        if minReady > .zero, let old = slots[slot]?.running {
            log.note("ready; serving beside \(old.label) for \(DurationText.format(minReady)) (backend.ready.min_ready)", worker: worker.label)
            slots[slot]?.incoming = (worker, true)
            save()
            let within = "backend.ready.min_ready (\(DurationText.format(minReady)))"
            let exited = { (exit: ChildProcess.Termination) in "\(exit.explanation) within \(within) of being ready; see 'slipway logs \(self.app)'" }
            let holding = ContinuousClock.now
            for offset in target.workers.ready.minReadyChecks {
                if let exit = await worker.exit(within: holding + offset - ContinuousClock.now) { return exited(exit) }
                // A check that answered slowly does not make the next ones run back to back;
                // the last one always runs.
                if offset != minReady, ContinuousClock.now > holding + offset + .milliseconds(500) { continue }
                guard let health = target.workers.health, let own = worker.ownSocket else { continue }
                let (result, problem) = await HealthProbe(endpoint: own.endpoint, health: health).judge(slot: slot)
                worker.record(result)
                if problem != nil, let exit = worker.exit { return exited(exit) }
                if let problem {
                    await stop(worker, as: target.workers.stop)
                    let when = offset == minReady ? "at the end of" : "\(DurationText.format(offset)) into"
                    return String(problem.dropFirst("worker \(slot) ".count)) + " \(when) \(within); see 'slipway logs \(app)'"
                }
            }
            if let exit = worker.exit { return exited(exit) }
        }
        slots[slot, default: WorkerSlot()].worker = worker
        return nil
    }
}
