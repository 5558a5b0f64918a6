import Foundation
import Logging
import SlipwayCore

/// Runs one app's workers: rolling reloads onto a new target (AppSupervisor+Rollout), crash
/// restarts with backoff and graceful replacement above `max_memory` (AppSupervisor+Monitor),
/// a handover to the agent's next image (AppSupervisor+Handover), and a drain on shutdown.
/// An actor on a queue of its own (`SupervisorQueue`), so a rollout, the monitor and a status
/// snapshot never see a half-changed slot table, and its blocking work stays off the pool.
actor AppSupervisor {
    let app: AppName
    let stateDir: String
    let appDirectory: String
    let log: WorkerLog
    let logger: Logger
    let metrics: AgentMetrics

    private let queue: SupervisorQueue
    nonisolated var unownedExecutor: UnownedSerialExecutor { queue.asUnownedSerialExecutor() }
    /// Signalled by every worker's watcher (ready, exited) and at the end of a rollout.
    let changes = ChangeSignal()
    /// Held by a rollout, a verify, a memory replacement or a handover: one at a time.
    let gate = SerialGate()

    var listener: ListeningSocket?
    /// Sockets of an earlier `listen`, closed once no worker uses them.
    var retiredListeners: [ListeningSocket] = []
    var slots: [Int: WorkerSlot] = [:]
    /// The target the running workers were accepted for: crash restarts start this again.
    var target: WorkerTarget?
    /// Where a failed `verify` goes back to.
    var fallback: Fallback = .stop

    enum Fallback {
        /// A first start: nothing ran before, the failed workers are stopped.
        case stop
        /// A reload of the generation already running (`slipway reload`): nothing to go back to.
        case keep
        case previous(WorkerTarget)
    }
    /// Replaced workers on their way out, each stopped by its own task.
    var draining: [WorkerProcess] = []
    var drains: [Task<Void, Never>] = []
    /// Workers a previous agent process left running (it was killed): replaced, then stopped.
    private var orphans: [WorkerTable.Worker]
    var monitor: Task<Void, Never>?
    /// How often the monitor has looked at the workers: a test sees it never spins.
    var monitorRounds = 0
    var degraded: String?
    var rss: [pid_t: UInt64] = [:]
    var lastSample = ContinuousClock.now - .seconds(60)
    private var notifyCounter = 0

    static let memoryInterval = Duration.seconds(3)

    /// `adopting`: this app's workers as the agent's previous image handed them over (issue 19).
    init(app: AppName, stateDir: String, appDirectory: String, logger: Logger, metrics: AgentMetrics,
         adopting handover: HandoverRecord.App? = nil) {
        self.metrics = metrics
        self.queue = SupervisorQueue(app: app.value)
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
                slots[record.slot] = WorkerSlot(worker: WorkerProcess(adopting: record, log: log, changes: changes), restarts: record.restarts)
            }
            // Slots in crash backoff: the monitor restarts them when their backoff ends.
            for record in handover.backoff ?? [] {
                slots[record.slot] = WorkerSlot(worker: WorkerProcess(exitedInHandover: record, changes: changes),
                                                restartAt: .now + .milliseconds(Int64(record.restartInSeconds * 1000)), restarts: record.restarts)
            }
            log.note("taken over by a new image of the agent: \(handover.workers.count) worker(s), none restarted")
        }
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
            let worker = try WorkerProcess.start(.init(argv: argv, environment: environment, directory: target.directory,
                                                       listener: listener?.fd, ownSocket: own, notify: notify, log: log, slot: slot,
                                                       generation: target.id, release: target.generation.release,
                                                       display: target.workers.command, containment: containment, changes: changes))
            if startingLow { StartPriority.lowerSession(pid: worker.pid) }
            return worker
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
        guard listener != nil, draining.isEmpty, !slots.values.contains(where: { $0.running != nil }) else { return }
        let address = listener!.address
        listener?.close()
        listener = nil
        closeRetiredListeners()
        log.note("no worker runs: stopped listening on \(address) until one starts")
    }

    func closeRetiredListeners() {
        let inUse = slots.values.contains { $0.running != nil } || !draining.isEmpty
        guard !retiredListeners.isEmpty, !inUse || listener != nil else { return }
        retiredListeners.forEach { $0.close() }
        retiredListeners = []
    }

    // MARK: Stopping

    func stop(_ worker: WorkerProcess, as settings: Workers.Stop? = nil) async {
        let stop = settings ?? target?.workers.stop ?? Workers.Stop()
        await worker.stop(signal: stop.signal.number, timeout: stop.timeout, log: log)
    }

    /// Takes `worker` out of service: it is stopped by a task of its own while the rollout goes on.
    func drain(_ worker: WorkerProcess, as settings: Workers.Stop) {
        draining.append(worker)
        drains.append(Task {
            await self.stop(worker, as: settings)
            self.draining.removeAll { $0 === worker }
        })
    }

    func waitForDrains() async {
        while !drains.isEmpty {
            let waiting = drains
            drains = []
            for task in waiting { await task.value }
        }
    }

    /// Runs `body` holding the gate, then writes the worker table and wakes the monitor.
    func exclusively<T: Sendable>(_ body: () async -> T) async -> T {
        await gate.acquire()
        defer {
            save()
            gate.release()
            changes.signal()
        }
        return await body()
    }

    /// Stops every worker (for removal of the app or the agent's shutdown), all at once, each
    /// within its stop timeout; closes the socket.
    func stopAll(reason: String) async {
        await exclusively { await stopEverything(reason: reason) }
    }

    private func stopEverything(reason: String) async {
        monitor?.cancel()
        monitor = nil
        let running = slots.values.compactMap(\.worker) + draining
        if !running.isEmpty { log.note("stopping all workers: \(reason)") }
        await withTaskGroup(of: Void.self) { group in
            for worker in running { group.addTask { await self.stop(worker) } }
        }
        let stop = target?.workers.stop ?? Workers.Stop()
        await stopOrphans(timeout: stop.timeout, signal: stop.signal.number)
        // The slots keep their restart counts and backoff; their workers are gone.
        for slot in slots.keys {
            slots[slot]?.worker = nil
            slots[slot]?.restartAt = nil
        }
        draining = []
        drains = []
        listener?.close()
        listener = nil
        retiredListeners.forEach { $0.close() }
        retiredListeners = []
        target = nil
        fallback = .stop
    }

    /// Workers of a previous agent process: they still serve on that agent's socket until the
    /// new workers are up, then get the stop signal, and SIGKILL after the timeout. Not our
    /// children, so no watcher signals their exit: looked at every 20 ms, only on this rare path.
    /// Their groups end after them, with any helper that left the worker's process group.
    func stopOrphans(timeout: Duration, signal: Int32) async {
        guard !orphans.isEmpty else { return }
        let alive = orphans.filter { ProcessTable.isRunning($0.pid, startTime: $0.procStartTime) }
        // Read while each is known to be that worker (the start time, again after the read).
        let groups = alive.compactMap { orphan in
            Containment.ofWorker(orphan.pid).flatMap { ProcessTable.isRunning(orphan.pid, startTime: orphan.procStartTime) ? $0 : nil }
        }
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
        for group in groups { await group.end() }
        orphans = []
    }

    // MARK: Status

    func table() -> WorkerTable {
        var workers: [WorkerTable.Worker] = []
        func row(_ worker: WorkerProcess, state: WorkerTable.Worker.State) -> WorkerTable.Worker {
            let snapshot = worker.snapshot
            return WorkerTable.Worker(slot: worker.slot, pid: worker.pid, procStartTime: worker.procStartTime, release: worker.release,
                                      generation: worker.generation, state: state, startedAt: worker.startedAt,
                                      restarts: slots[worker.slot]?.restarts ?? 0, rssBytes: rss[worker.pid], status: snapshot.status,
                                      ownSocket: worker.ownSocket?.description, health: snapshot.health)
        }
        for (_, worker) in occupied {
            let snapshot = worker.snapshot
            let state: WorkerTable.Worker.State = snapshot.exit != nil ? .backoff
                : worker.isStopping ? .draining
                : (target?.workers.ready.notify == true && !snapshot.ready) ? .starting : .ready
            workers.append(row(worker, state: state))
        }
        for slot in slots.keys.sorted() {
            guard let (worker, ready) = slots[slot]?.incoming, worker.exit == nil else { continue }
            workers.append(row(worker, state: ready ? .ready : .starting))
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
        Set((slots.values.compactMap(\.running) + draining).filter { $0.exit == nil }.map(\.release) + orphans.map(\.release))
    }

    /// The slots with a worker in them (running or exited), in slot order.
    var occupied: [(slot: Int, worker: WorkerProcess)] {
        slots.keys.sorted().compactMap { slot in slots[slot]?.worker.map { (slot, $0) } }
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
