import Foundation
import SlipwayCore

/// Handing an app's workers to the agent's next image (issue 19): the old image freezes them
/// (no rollout, no monitor, every watcher thread away from its fds) and describes them; the new
/// image takes them over as they are: same pids, same sockets, same pipes, no restart.
extension AppSupervisor {
    /// Waits for a rollout in progress to end, keeps new ones out, stops the monitor and pauses
    /// every worker's watcher; returns the app's part of the handover record.
    func freezeForHandover() async -> HandoverRecord.App {
        await gate.acquire()
        monitor?.cancel()
        monitor = nil
        for worker in slots.values.compactMap(\.worker) + draining { worker.gate.pause() }
        // A worker that exited (in backoff) or is stopping is not handed over: the first pass
        // of the new image fills its slot.
        let workers = occupied.compactMap { slot, worker -> HandoverRecord.Worker? in
            guard worker.exit == nil, !worker.isStopping else { return nil }
            return worker.handover(restarts: slots[slot]?.restarts ?? 0)
        }
        return HandoverRecord.App(app: app.value, listener: listener.map(HandoverRecord.Listener.init), degraded: degraded, workers: workers)
    }

    /// `execve` failed: everything goes on as before.
    func resumeAfterFailedHandover() {
        for worker in slots.values.compactMap(\.worker) + draining { worker.gate.resume() }
        gate.release()
        if target != nil { startMonitor() }
    }
}

extension WorkerProcess {
    func handover(restarts: Int) -> HandoverRecord.Worker {
        let current = snapshot
        return HandoverRecord.Worker(slot: slot, pid: pid, procStartTime: procStartTime, generation: generation, release: release,
                                     startedAt: startedAt, uptimeSeconds: Double(uptime.components.seconds)
                                         + Double(uptime.components.attoseconds) / 1e18,
                                     ready: current.ready, status: current.status, restarts: restarts,
                                     stdoutFD: pipes.stdout, stderrFD: pipes.stderr, notifyFD: notify?.fd, notifyPath: notify?.path,
                                     ownSocketFD: ownSocket?.fd, ownSocketPort: ownSocket?.port, containment: containment?.directory)
    }
}
