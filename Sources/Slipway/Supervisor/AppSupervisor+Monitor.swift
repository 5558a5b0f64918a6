import Foundation
import Logging
import SlipwayCore

/// The monitor of one app's workers between rollouts, woken by the workers' watchers (an exit)
/// and by its own deadlines, never by a polling loop: a crashed worker is restarted in its slot
/// after its backoff (the socket closed while none runs, bound again before the restart), a
/// crash loop is reported, and every 3 s the RSS is sampled and a worker above `max_memory` is
/// replaced gracefully.
extension AppSupervisor {
    func startMonitor() {
        guard monitor == nil else { return }
        monitor = Task { [weak self, changes] in
            while !Task.isCancelled, let self {
                let seen = changes.generation
                let next = await self.tick()
                await changes.wait(since: seen, until: next)
            }
        }
    }

    /// One look at the workers; returns when the monitor must look again at the latest (the
    /// next restart due, or the next memory sample), or nil when only a change can give it
    /// work: no target yet, or a rollout, verify or handover holds the gate (and wakes the
    /// monitor when it lets go).
    private func tick() async -> ContinuousClock.Instant? {
        monitorRounds += 1
        guard let target, gate.tryAcquire() else { return nil }
        defer { gate.release() }
        var changed = false
        for (slot, worker) in occupied {
            if let exit = worker.exit, !worker.isStopping, slots[slot]?.restartAt == nil {
                var policy = slots[slot]?.backoff ?? RestartBackoff(policy: target.workers.restart)
                policy.policy = target.workers.restart
                let delay = policy.crashed(after: worker.uptime)
                slots[slot]?.backoff = policy
                slots[slot]?.restartAt = .now + delay
                slots[slot]?.restarts += 1
                metrics.workerRestarted(app: app, reason: "crash")
                let message = "worker \(slot) \(exit.explanation); restart in \(DurationText.format(delay))"
                log.note(message, worker: worker.label)
                if policy.isCrashLooping {
                    // A worker that passed its start (a settle-only one on a busy host may die
                    // after the settle) and then dies for a reason its output names, such as a
                    // port it binds itself, gets the same explanation as one that died starting.
                    let why = await StartFailureHint.explain(worker, target: target, log: log, patience: .milliseconds(100))
                    degraded = "crash loop: worker \(slot) \(exit.explanation), \(policy.crashesInARow) times in a row"
                        + (why.map { ": \($0)" } ?? "") + "; restarting with backoff (next in \(DurationText.format(delay)))"
                    logger.error("\(degraded!)", metadata: ["app": "\(app)"])
                } else {
                    logger.warning("\(message)", metadata: ["app": "\(app)"])
                }
                changed = true
            } else if worker.exit == nil, slots[slot]?.backoff?.crashesInARow ?? 0 > 0 {
                if worker.uptime >= target.workers.restart.minUptime {
                    slots[slot]?.backoff?.stayedUp()
                    if !(slots.values.contains { $0.backoff?.isCrashLooping == true }) { degraded = nil }
                    changed = true
                }
            }
        }
        if changed { closeListenerIfIdle() }
        for (slot, entry) in slots.sorted(by: { $0.key < $1.key }) where slot < target.count {
            guard let at = entry.restartAt, ContinuousClock.now >= at else { continue }
            slots[slot]?.restartAt = nil
            do {
                try ensureListener(for: target)
                slots[slot]?.worker = try launch(slot: slot, target: target)
            } catch {
                log.note("restart of worker \(slot) failed: \(error)")
                var policy = entry.backoff ?? RestartBackoff(policy: target.workers.restart)
                slots[slot]?.restartAt = .now + policy.crashed(after: .zero)
                slots[slot]?.backoff = policy
            }
            changed = true
        }
        if ContinuousClock.now - lastSample >= Self.memoryInterval {
            lastSample = .now
            await sampleMemory(target)
            changed = true
        }
        if changed { save() }
        return nextWake(target)
    }

    /// The earliest of: the next restart due, the moment a restarted worker has stayed up
    /// `min_uptime` (its backoff resets), the next memory sample; never in the past, so a
    /// deadline nothing acts on cannot make the monitor spin.
    private func nextWake(_ target: WorkerTarget) -> ContinuousClock.Instant {
        var next = lastSample + Self.memoryInterval
        for (_, entry) in slots {
            if let at = entry.restartAt { next = min(next, at) }
            if let worker = entry.running, entry.backoff?.crashesInARow ?? 0 > 0 {
                next = min(next, worker.started + target.workers.restart.minUptime)
            }
        }
        return max(next, .now + .milliseconds(20))
    }

    private func sampleMemory(_ target: WorkerTarget) async {
        func sample() {
            rss = ProcessTable.residentBytes(ofGroups: Set(slots.values.compactMap(\.running).map(\.pid)))
        }
        sample()
        guard let limit = target.workers.maxMemory else { return }
        defer { sample() }  // the replacements' own figures, for status
        // A worker younger than min_uptime is left alone, so one that starts above the limit is
        // not replaced in a tight loop.
        for (slot, worker) in occupied where worker.exit == nil && !worker.isStopping
            && worker.uptime >= target.workers.restart.minUptime {
            guard let bytes = rss[worker.pid], bytes > limit else { continue }
            log.note("RSS \(ByteSize.format(bytes)) is above max_memory \(ByteSize.format(limit)): replacing it", worker: worker.label)
            logger.warning("worker \(slot) uses \(ByteSize.format(bytes)), above max_memory; replacing it", metadata: ["app": "\(app)"])
            if let problem = await startReady(slot: slot, target: target) {
                log.note("replacement failed: \(problem); the old worker keeps running")
            } else {
                slots[slot]?.restarts += 1
                metrics.workerRestarted(app: app, reason: "max_memory")
                // Shown as draining while it stops, as a rollout's old worker is: it left its slot
                // to the new one, and the worker table `slipway status` reads still had it ready in
                // its slot, beside the new one starting, for as long as its stop took.
                draining.append(worker)
                save()
                await stop(worker)
                draining.removeAll { $0 === worker }
            }
        }
    }
}
