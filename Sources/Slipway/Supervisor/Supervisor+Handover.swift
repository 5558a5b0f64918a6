import Foundation
import SlipwayCore

/// Every app's part of a re-exec (issue 19): freeze and describe on the way out, check and
/// take over on the way in.
extension Supervisor {
    /// Freezes every app's workers and returns their records.
    func freezeForHandover() async -> [HandoverRecord.App] {
        var records: [HandoverRecord.App] = []
        for (_, app) in apps.sorted(by: { $0.key.value < $1.key.value }) {
            records.append(await app.freezeForHandover())
        }
        return records
    }

    func resumeAfterFailedHandover() async {
        for (_, app) in apps { await app.resumeAfterFailedHandover() }
    }

    /// Takes over every worker of `record`. Checks everything first (each fd open, each pid the
    /// same process and this process's child), so that a refusal leaves nothing half-adopted
    /// and the previous image can take the same record back.
    func adopt(_ record: HandoverRecord) async throws {
        for fd in record.fds where fcntl(fd, F_GETFD) < 0 {
            throw HandoverError("fd \(fd) of the handover record is not open in this image")
        }
        var names: [(AppName, HandoverRecord.App)] = []
        for app in record.apps {
            guard let name = AppName(app.app) else { throw HandoverError("the handover record names an invalid app '\(app.app)'") }
            if let listener = app.listener, listener.address == nil {
                throw HandoverError("the handover record's socket of \(app.app) has no address")
            }
            for worker in app.workers {
                guard ProcessTable.startTime(of: worker.pid) == worker.procStartTime else {
                    throw HandoverError("worker \(worker.slot) of \(app.app) (pid \(worker.pid)) is gone")
                }
                guard ProcessTable.parent(of: worker.pid) == getpid() else {
                    throw HandoverError("worker \(worker.slot) of \(app.app) (pid \(worker.pid)) is not a child of this agent")
                }
            }
            names.append((name, app))
        }
        // Close-on-exec again: these fds go on to workers only through the spawn's own dup2.
        for fd in record.fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        for (name, app) in names {
            apps[name] = AppSupervisor(app: name, stateDir: config.stateDir,
                                       appDirectory: AppLayout(appsRoot: config.appsRoot, app: name).root, logger: logger,
                                       metrics: metrics, adopting: app)
        }
        // Their tables stay as the previous image wrote them (same pids, and the generation this
        // image learns from its first pass); only the metrics are this image's to fill.
        for (_, app) in apps { await app.observeAdopted() }
    }
}
