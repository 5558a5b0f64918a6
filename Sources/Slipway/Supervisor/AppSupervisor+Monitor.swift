import Foundation
import Logging
import SlipwayCore

/// The monitor of one app's workers, every 50 ms between rollouts: a crashed worker is
/// restarted in its slot after its backoff (the socket closed while none runs, bound again
/// before the restart), a crash loop is reported, and every 3 s the RSS is sampled and a
/// worker above `max_memory` is replaced gracefully.
extension AppSupervisor {
    func startMonitor() {
        guard monitor == nil else { return }
        monitor = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(50))
                await self?.tick()
            }
        }
    }

    private func tick() async {
        guard !busy, let target else { return }
        var changed = false
        for (slot, worker) in slots {
            if let exit = worker.exit, !worker.isStopping, restartAt[slot] == nil {
                var policy = backoff[slot] ?? RestartBackoff(policy: target.workers.restart)
                policy.policy = target.workers.restart
                let delay = policy.crashed(after: worker.uptime)
                backoff[slot] = policy
                restartAt[slot] = (.now + delay, worker)
                restarts[slot, default: 0] += 1
                metrics.workerRestarted(app: app, reason: "crash")
                let message = "worker \(slot) \(exit.explanation); restart in \(DurationText.format(delay))"
                log.note(message, worker: worker.label)
                if policy.isCrashLooping {
                    degraded = "crash loop: worker \(slot) \(exit.explanation), \(policy.crashesInARow) times in a row; restarting with backoff (next in \(DurationText.format(delay)))"
                    logger.error("\(degraded!)", metadata: ["app": "\(app)"])
                } else {
                    logger.warning("\(message)", metadata: ["app": "\(app)"])
                }
                changed = true
            } else if worker.exit == nil, worker.uptime >= target.workers.restart.minUptime, backoff[slot]?.crashesInARow ?? 0 > 0 {
                backoff[slot]?.stayedUp()
                if !(backoff.values.contains { $0.isCrashLooping }) { degraded = nil }
                changed = true
            }
        }
        if changed { closeListenerIfIdle() }
        for (slot, pending) in restartAt where ContinuousClock.now >= pending.at && slot < target.count {
            restartAt[slot] = nil
            do {
                try ensureListener(for: target)
                slots[slot] = try launch(slot: slot, target: target)
            } catch {
                log.note("restart of worker \(slot) failed: \(error)")
                var policy = backoff[slot] ?? RestartBackoff(policy: target.workers.restart)
                restartAt[slot] = (.now + policy.crashed(after: .zero), pending.crashed)
                backoff[slot] = policy
            }
            changed = true
        }
        if ContinuousClock.now - lastSample >= Self.memoryInterval {
            lastSample = .now
            await sampleMemory(target)
            changed = true
        }
        if changed { save() }
    }

    private func sampleMemory(_ target: WorkerTarget) async {
        func sample() {
            rss = ProcessTable.residentBytes(ofGroups: Set(slots.values.filter { $0.exit == nil }.map(\.pid)))
        }
        sample()
        guard let limit = target.workers.maxMemory else { return }
        defer { sample() }  // the replacements' own figures, for status
        // A worker younger than min_uptime is left alone, so one that starts above the limit is
        // not replaced in a tight loop.
        for (slot, worker) in slots.sorted(by: { $0.key < $1.key }) where worker.exit == nil && !worker.isStopping
            && worker.uptime >= target.workers.restart.minUptime {
            guard let bytes = rss[worker.pid], bytes > limit else { continue }
            log.note("RSS \(ByteSize.format(bytes)) is above max_memory \(ByteSize.format(limit)): replacing it", worker: worker.label)
            logger.warning("worker \(slot) uses \(ByteSize.format(bytes)), above max_memory; replacing it", metadata: ["app": "\(app)"])
            busy = true
            if let problem = await startReady(slot: slot, target: target) {
                log.note("replacement failed: \(problem); the old worker keeps running")
            } else {
                restarts[slot, default: 0] += 1
                metrics.workerRestarted(app: app, reason: "max_memory")
                await stop(worker)
            }
            busy = false
        }
    }
}
