import Foundation
import Logging
import SlipwayCore

/// Runs one app's workers: rolling reloads onto a new target, crash restarts with backoff,
/// graceful replacement above `max_memory`, and a drain on shutdown. An actor, so a rollout,
/// the monitor and a status snapshot never see a half-changed slot table.
actor AppSupervisor {
    let app: AppName
    let stateDir: String
    let appDirectory: String
    let log: WorkerLog
    let logger: Logger
    let metrics: AgentMetrics

    var listener: ListeningSocket?
    /// Sockets of an earlier `listen`, closed once no worker uses them.
    private var retiredListeners: [ListeningSocket] = []
    var slots: [Int: WorkerProcess] = [:]
    /// The target the running workers were accepted for: crash restarts start this again.
    private(set) var target: WorkerTarget?
    /// Where a failed `verify` goes back to.
    private var fallback: Fallback = .stop

    enum Fallback {
        /// A first start: nothing ran before, the failed workers are stopped.
        case stop
        /// A reload of the generation already running (`slipway reload`): nothing to go back to.
        case keep
        case previous(WorkerTarget)
    }
    var backoff: [Int: RestartBackoff] = [:]
    var restartAt: [Int: (at: ContinuousClock.Instant, crashed: WorkerProcess)] = [:]
    var restarts: [Int: Int] = [:]
    var draining: [WorkerProcess] = []
    /// Workers a previous agent process left running (it was killed): replaced, then stopped.
    private var orphans: [WorkerTable.Worker]
    var busy = false
    var monitor: Task<Void, Never>?
    var degraded: String?
    var rss: [pid_t: UInt64] = [:]
    var lastSample = ContinuousClock.now - .seconds(60)
    private var notifyCounter = 0

    static let memoryInterval = Duration.seconds(3)

    /// `adopting`: this app's workers as the agent's previous image handed them over (issue 19).
    init(app: AppName, stateDir: String, appDirectory: String, logger: Logger, metrics: AgentMetrics,
         adopting handover: HandoverRecord.App? = nil) {
        self.metrics = metrics
        self.app = app
        self.stateDir = stateDir
        self.appDirectory = appDirectory
        self.log = WorkerLog(path: WorkerLog.path(stateDir: stateDir, app: app))
        self.logger = logger
        let recorded = (WorkerTable.load(stateDir: stateDir, app: app.value)?.workers ?? []).filter {
            $0.pid > 1 && ProcessTable.isRunning($0.pid, startTime: $0.procStartTime)
        }
        // Workers spawned after the table's last write are found by their marker (not needed
        // after a re-exec: the previous image wrote the table, its own orphans included).
        let marked = (handover != nil ? [] : WorkerMarker.find(stateDir: stateDir, app: app)).filter { found in
            !recorded.contains { $0.pid == found.pid && $0.procStartTime == found.procStartTime }
        }
        let adopted = Set((handover?.workers ?? []).map(\.pid))
        self.orphans = (recorded + marked).filter { !adopted.contains($0.pid) }
        if let handover {
            // The new image takes the workers as they are (issue 19): see AppSupervisor+Handover.
            listener = handover.listener.flatMap { ListeningSocket.adopt($0) }
            degraded = handover.degraded
            for record in handover.workers {
                slots[record.slot] = WorkerProcess(adopting: record, log: log)
                restarts[record.slot] = record.restarts
            }
            log.note("taken over by a new image of the agent: \(handover.workers.count) worker(s), none restarted")
        }
    }

    // MARK: Rollout

    /// Brings the workers to `target`, one slot at a time: start the new worker, wait until it
    /// is ready and healthy, then stop the old one. On a failure the new workers are stopped
    /// and the slots already moved go back to the previous target, so the old release keeps
    /// serving. `force` replaces workers that already run the target (`slipway reload`).
    func reload(to target: WorkerTarget, force: Bool = false) async -> RolloutResult {
        await exclusively {
            startMonitor()
            let previous = self.target
            let result = await rollout(to: target, force: force)
            metrics.rolloutFinished(app: app, stage: .reload, succeeded: result.succeeded)
            if case .failed(let stage, let reason) = result {
                await revert(to: previous, from: target, after: "\(stage) failed: \(reason)")
                // Orphans of a killed agent go once workers of ours serve: never more than `instances`.
                if slots.values.contains(where: { $0.exit == nil }) {
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
            for slot in 0..<target.count where slots[slot]?.exit != nil || slots[slot] == nil {
                problem = "worker \(slot) is not running"
                break
            }
            if problem == nil, let health = target.workers.health {
                for slot in 0..<target.count {
                    guard let worker = slots[slot], let own = worker.ownSocket else { continue }
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

    private func exclusively<T: Sendable>(_ body: () async -> T) async -> T {
        while busy { try? await Task.sleep(for: .milliseconds(20)) }
        busy = true
        defer {
            busy = false
            save()
        }
        return await body()
    }

    /// Puts the workers back on `previous` after `target` failed. The failed generation's
    /// workers are stopped first, so none of them answers a client or stands in for another
    /// worker; then the empty slots get workers of `previous`, each judged on its own socket,
    /// and the workers of `previous` still running are left alone: a failed release is never
    /// the reason one of them stops. With no previous target (a first start) the failed workers
    /// are stopped and the socket is closed, so clients are refused at once.
    private func revert(to previous: WorkerTarget?, from target: WorkerTarget, after failure: String) async {
        log.note(failure)
        // A failed reload of the same generation keeps what it started: it is that generation too.
        guard previous?.id != target.id else { return }
        for (slot, worker) in slots.sorted(by: { $0.key < $1.key }) where worker.generation == target.id {
            slots[slot] = nil
            restartAt[slot] = nil
            await stop(worker, as: target.workers.stop)
        }
        if let previous {
            log.note("going back to generation \(previous.id) (release \(previous.generation.release))")
            if case .failed(_, let again) = await rollout(to: previous, force: false) {
                log.note("going back failed too: \(again)")
                degraded = "\(failure), and going back to \(previous.generation.release) failed: \(again)"
            }
            self.target = previous
        } else {
            self.target = nil
            closeListenerIfIdle()
        }
    }

    private func rollout(to target: WorkerTarget, force: Bool) async -> RolloutResult {
        do {
            try ensureListener(for: target)
        } catch {
            return .failed(stage: .reload, reason: "\(error)")
        }
        var replaced = 0, started = 0, stopped = 0
        for slot in 0..<target.count {
            // A crashed worker of this generation waiting out its backoff is the monitor's to
            // restart: a pass must not bypass the backoff of a crash loop.
            if let crashed = slots[slot], crashed.exit != nil, restartAt[slot] != nil, crashed.generation == target.id, !force { continue }
            let old = slots[slot].flatMap { $0.exit == nil ? $0 : nil }
            if let old, old.generation == target.id, !force { continue }
            if Task.isCancelled { return .failed(stage: .reload, reason: "the agent is shutting down") }
            if let problem = await startReady(slot: slot, target: target) {
                return .failed(stage: .reload, reason: "worker \(slot) " + problem)
            }
            if let old {
                replaced += 1
                draining.append(old)
                Task { await self.drain(old, as: target.workers.stop) }
            } else {
                started += 1
            }
            restartAt[slot] = nil
        }
        for slot in slots.keys.sorted() where slot >= target.count {
            if let worker = slots.removeValue(forKey: slot) {
                stopped += 1
                await stop(worker, as: target.workers.stop)
            }
            restartAt[slot] = nil
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
        do {
            worker = try launch(slot: slot, target: target, startingLow: true)
        } catch {
            return "could not start: \(error)"
        }
        let ready = target.workers.ready
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
        StartPriority.restore(pid: worker.pid)
        slots[slot] = worker
        return nil
    }

    /// `startingLow`: at a lower CPU priority until `startReady` sees it ready (`StartPriority`);
    /// a crashed worker's restart is not waited for, so it starts at normal priority.
    func launch(slot: Int, target: WorkerTarget, startingLow: Bool = false) throws -> WorkerProcess {
        var environment = target.environment
        var notify: NotifySocket?
        if target.workers.ready.notify {
            notifyCounter += 1
            // Inside the app's directory, which its account can reach (the state dir need not be).
            let directory = appDirectory + "/.slipway/notify"
            try FileOps.makeDirectories(directory, mode: 0o711)
            notify = try NotifySocket(path: "\(directory)/w\(slot)-\(notifyCounter).sock", owner: target.account)
            environment["NOTIFY_SOCKET"] = notify?.path
        }
        // With a health check, a socket of its own as fd 4: only this worker can answer there.
        let own = listener != nil && target.workers.health != nil ? try WorkerSocket.bind() : nil
        environment.merge(WorkerSocket.listenVariables(app: app, shared: listener != nil, own: own != nil)) { $1 }
        environment[WorkerMarker.variable] = WorkerMarker.value(stateDir: stateDir, app: app)
        environment["SLIPWAY_WORKER"] = String(slot)
        let shell = ["/bin/sh", "-c", WorkerCommand.shellLine(target.workers.command)]
        var argv = target.account.map { $0.wrap(shell) } ?? shell
        // Issue 16: the worker and whatever it forks live and die together.
        let containment = target.account.map { _ in Containment.make("w\(slot)") }
        if let containment { argv = containment.wrap(argv) }
        if startingLow { argv = StartPriority.wrap(argv, containment: containment) }
        do {
            return try WorkerProcess.start(.init(argv: argv, environment: environment, directory: target.directory,
                                                 listener: listener?.fd, ownSocket: own, notify: notify, log: log, slot: slot,
                                                 generation: target.id, release: target.generation.release,
                                                 display: target.workers.command, containment: containment))
        } catch {
            notify?.close()
            own?.close()
            containment?.end()
            throw error
        }
    }

    func ensureListener(for target: WorkerTarget) throws {
        guard listener?.address != target.generation.listen else { return }
        if let old = listener { retiredListeners.append(old) }
        listener = nil
        if let address = target.generation.listen {
            listener = try ListeningSocket.bind(address, appDirectory: appDirectory, group: target.account?.gid)
            log.note("listening on \(address)")
        }
    }

    /// No workers, no listener: with no worker running or draining (a failed first start, every
    /// worker in backoff), the socket is closed, so a client is refused at once instead of
    /// waiting in a queue nobody accepts from. It is bound again before the next worker starts.
    func closeListenerIfIdle() {
        guard listener != nil, draining.isEmpty, !slots.values.contains(where: { $0.exit == nil }) else { return }
        let address = listener!.address
        listener?.close()
        listener = nil
        closeRetiredListeners()
        log.note("no worker runs: stopped listening on \(address) until one starts")
    }

    private func closeRetiredListeners() {
        let inUse = slots.values.contains { $0.exit == nil } || !draining.isEmpty
        guard !retiredListeners.isEmpty, !inUse || listener != nil else { return }
        retiredListeners.forEach { $0.close() }
        retiredListeners = []
    }

    // MARK: Stopping

    func stop(_ worker: WorkerProcess, as settings: Workers.Stop? = nil) async {
        let stop = settings ?? target?.workers.stop ?? Workers.Stop()
        await worker.stop(signal: stop.signal.number, timeout: stop.timeout, log: log)
    }

    private func drain(_ worker: WorkerProcess, as settings: Workers.Stop) async {
        await stop(worker, as: settings)
        draining.removeAll { $0 === worker }
    }

    private func waitForDrains() async {
        while !draining.isEmpty { try? await Task.sleep(for: .milliseconds(10)) }
    }

    /// Stops every worker (for removal of the app or the agent's shutdown), all at once, each
    /// within its stop timeout; closes the socket.
    func stopAll(reason: String) async {
        await exclusively { await stopEverything(reason: reason) }
    }

    private func stopEverything(reason: String) async {
        monitor?.cancel()
        monitor = nil
        let running = Array(slots.values) + draining
        if !running.isEmpty { log.note("stopping all workers: \(reason)") }
        await withTaskGroup(of: Void.self) { group in
            for worker in running { group.addTask { await self.stop(worker) } }
        }
        let stop = target?.workers.stop ?? Workers.Stop()
        await stopOrphans(timeout: stop.timeout, signal: stop.signal.number)
        slots = [:]
        draining = []
        restartAt = [:]
        listener?.close()
        listener = nil
        retiredListeners.forEach { $0.close() }
        retiredListeners = []
        target = nil
        fallback = .stop
    }

    /// Workers of a previous agent process: they still serve on that agent's socket until the
    /// new workers are up, then get the stop signal, and SIGKILL after the timeout.
    private func stopOrphans(timeout: Duration, signal: Int32) async {
        guard !orphans.isEmpty else { return }
        let alive = orphans.filter { ProcessTable.isRunning($0.pid, startTime: $0.procStartTime) }
        for orphan in alive {
            log.note("stopping worker left by a previous agent (release \(orphan.release))", worker: "w\(orphan.slot) \(orphan.pid)")
            kill(-orphan.pid, signal)
        }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline, alive.contains(where: { ProcessTable.isRunning($0.pid, startTime: $0.procStartTime) }) {
            try? await Task.sleep(for: .milliseconds(20))
        }
        for orphan in alive where ProcessTable.isRunning(orphan.pid, startTime: orphan.procStartTime) {
            kill(-orphan.pid, SIGKILL)
        }
        orphans = []
    }

    // MARK: Status

    func table() -> WorkerTable {
        var workers: [WorkerTable.Worker] = []
        func row(_ worker: WorkerProcess, state: WorkerTable.Worker.State) -> WorkerTable.Worker {
            let snapshot = worker.snapshot
            return WorkerTable.Worker(slot: worker.slot, pid: worker.pid, procStartTime: worker.procStartTime, release: worker.release,
                                      generation: worker.generation, state: state, startedAt: worker.startedAt,
                                      restarts: restarts[worker.slot] ?? 0, rssBytes: rss[worker.pid], status: snapshot.status,
                                      ownSocket: worker.ownSocket?.description, health: snapshot.health)
        }
        for (slot, worker) in slots.sorted(by: { $0.key < $1.key }) {
            let snapshot = worker.snapshot
            let state: WorkerTable.Worker.State = snapshot.exit != nil ? .backoff
                : worker.isStopping ? .draining
                : (target?.workers.ready.notify == true && !snapshot.ready) ? .starting : .ready
            workers.append(row(worker, state: state))
            _ = slot
        }
        for worker in draining { workers.append(row(worker, state: .draining)) }
        // Orphans still alive are shown too: they still serve until replaced.
        for orphan in orphans where ProcessTable.isRunning(orphan.pid, startTime: orphan.procStartTime) {
            var copy = orphan
            copy.status = "left by a previous agent process; replaced on the next rollout"
            workers.append(copy)
        }
        return WorkerTable(app: app.value, listen: target?.generation.listen?.description, release: target?.generation.release,
                           generation: target?.id, degraded: degraded, workers: workers, updatedAt: .now)
    }

    var degradedReason: String? { degraded }

    /// Releases some worker still runs: retention must keep them.
    func releasesInUse() -> Set<ReleaseID> {
        Set((Array(slots.values) + draining).filter { $0.exit == nil }.map(\.release) + orphans.map(\.release))
    }

    func save() {
        let table = table()
        metrics.workersObserved(table)
        do {
            try table.save(stateDir: stateDir)
        } catch {
            logger.warning("cannot write the worker table: \(error)", metadata: ["app": "\(app)"])
        }
    }
}
