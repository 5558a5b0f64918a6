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
        // A worker that is stopping is not handed over: the first pass of the new image fills
        // its slot. One that exited and waits out its restart backoff is handed over as that
        // (no process): the new image's monitor restarts it when its backoff ends, and its
        // first pass leaves the slot to the monitor, as this image's would. (A first pass that
        // started such a slot itself and saw it crash again would go back to "no workers" and
        // stop the healthy ones too: the new image has no earlier target to go back to.)
        let workers = occupied.compactMap { slot, worker -> HandoverRecord.Worker? in
            guard worker.exit == nil, !worker.isStopping else { return nil }
            return worker.handover(restarts: slots[slot]?.restarts ?? 0)
        }
        let backoff = occupied.compactMap { slot, worker -> HandoverRecord.Backoff? in
            // (One that exited a moment ago, before the monitor saw it, is restarted at once.)
            guard let exit = worker.exit, !worker.isStopping else { return nil }
            return worker.handoverInBackoff(exit: exit, restarts: slots[slot]?.restarts ?? 0,
                                            restartIn: slots[slot]?.restartAt.map { $0 - .now } ?? .zero)
        }
        return HandoverRecord.App(app: app.value, listener: listener.map(HandoverRecord.Listener.init), degraded: degraded,
                                  workers: workers, backoff: backoff.isEmpty ? nil : backoff)
    }

    /// The new image's metrics learn the workers it took over.
    func observeAdopted() {
        metrics.workersObserved(table())
    }

    /// `execve` failed: everything goes on as before.
    func resumeAfterFailedHandover() {
        for worker in slots.values.compactMap(\.worker) + draining { worker.gate.resume() }
        gate.release()
        if target != nil { startMonitor() }
    }
}

extension WorkerProcess {
    func handoverInBackoff(exit: ChildProcess.Termination, restarts: Int, restartIn: Duration) -> HandoverRecord.Backoff {
        var status: Int32?, signal: Int32?
        switch exit {
        case .exited(let code): status = code
        case .signalled(let number): signal = number
        case .timedOut, .cancelled: signal = SIGKILL
        }
        return HandoverRecord.Backoff(slot: slot, pid: pid, generation: generation, release: release, startedAt: startedAt,
                                      uptimeSeconds: Self.seconds(uptime), exitStatus: status, signal: signal, restarts: restarts,
                                      restartInSeconds: max(0, Self.seconds(restartIn)))
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    func handover(restarts: Int) -> HandoverRecord.Worker {
        let current = snapshot
        return HandoverRecord.Worker(slot: slot, pid: pid, procStartTime: procStartTime, generation: generation, release: release,
                                     startedAt: startedAt, uptimeSeconds: Self.seconds(uptime),
                                     ready: current.ready, status: current.status, restarts: restarts,
                                     stdoutFD: pipes.stdout, stderrFD: pipes.stderr, notifyFD: notify?.fd, notifyPath: notify?.path,
                                     ownSocketFD: ownSocket?.fd, ownSocketPort: ownSocket?.port, containment: containment?.directory)
    }
}
