import CSpawn
import Foundation
import SlipwayCore

/// One running worker: a process in its own session (so its whole group is signalled), its
/// stdout and stderr piped into the app's `WorkerLog`, and one thread that waits on its
/// output, its notify socket and its exit (a pidfd) at once, and signals the app's
/// `ChangeSignal` when the worker becomes ready or exits: nobody polls a worker.
final class WorkerProcess: Sendable {
    let pid: pid_t
    let slot: Int
    let generation: String
    let release: ReleaseID
    let started: ContinuousClock.Instant
    let startedAt: UTCTime
    /// /proc start time, so a restarted agent can tell this process from a reused pid.
    let procStartTime: UInt64
    /// Its own socket (fd 4), where it is judged; closed when it has exited.
    let ownSocket: WorkerSocket?
    private let state = Mutex(State())
    /// Held by the watcher thread while it handles what poll() returned; a handover (issue 19)
    /// takes it and sets `paused`, so no fd of this worker is read, reaped or closed while the
    /// record is written and the agent re-executes.
    let gate = HandoverGate()
    /// What the watcher needs again after a failed handover, or hands to the next image.
    let pipes: (stdout: Int32, stderr: Int32)
    let notify: NotifySocket?
    let containment: Containment?
    /// The app's: signalled by the watcher on `READY=1` and on the exit.
    let changes: ChangeSignal

    struct State: Sendable {
        var ready = false
        /// The worker's last `STATUS=` line, shown by `slipway status`.
        var status: String?
        var exit: ChildProcess.Termination?
        var stopping = false
        /// Its last check on its own socket.
        var health: WorkerHealth?
    }

    struct Launch {
        var argv: [String]
        var environment: [String: String]
        var directory: String
        var listener: Int32?
        /// Handed over as fd 4 (after the listener as fd 3).
        var ownSocket: WorkerSocket?
        var notify: NotifySocket?
        var log: WorkerLog
        var slot: Int
        var generation: String
        var release: ReleaseID
        /// The command as the manifest wrote it, for the log.
        var display: String
        /// Issue 16: the worker's whole process tree, ended when the worker exits.
        var containment: Containment? = nil
        var changes: ChangeSignal
    }

    private init(pid: pid_t, launch: Launch, pipes: (Int32, Int32)) {
        self.pid = pid
        self.slot = launch.slot
        self.generation = launch.generation
        self.release = launch.release
        self.started = .now
        self.startedAt = .now
        self.procStartTime = ProcessTable.startTime(of: pid) ?? 0
        self.ownSocket = launch.ownSocket
        self.pipes = pipes
        self.notify = launch.notify
        self.containment = launch.containment
        self.changes = launch.changes
    }

    /// A worker the previous image of this agent started (same pid, still our child), taken
    /// over with its fds from the handover record.
    init(adopting record: HandoverRecord.Worker, log: WorkerLog, changes: ChangeSignal) {
        pid = record.pid
        slot = record.slot
        generation = record.generation
        release = record.release
        started = .now - .milliseconds(Int64(record.uptimeSeconds * 1000))
        startedAt = record.startedAt
        procStartTime = record.procStartTime
        ownSocket = record.ownSocketFD.flatMap { fd in record.ownSocketPort.map { WorkerSocket(adopting: fd, port: $0) } }
        pipes = (record.stdoutFD, record.stderrFD)
        notify = record.notifyFD.flatMap { fd in record.notifyPath.map { NotifySocket(adopting: fd, path: $0) } }
        containment = record.containment.map { Containment.adopt(directory: $0) }
        self.changes = changes
        state.withLock {
            $0.ready = record.ready
            $0.status = record.status
        }
        startWatcher(log: log)
    }

    /// A worker that had exited and waited out its restart backoff when the previous image
    /// handed its slot over (issue 19): no process, no fd, no watcher; only its exit and its
    /// place in the slot, until the monitor restarts the slot. Its pid is never signalled: every
    /// stop of a worker that has exited returns at once.
    init(exitedInHandover record: HandoverRecord.Backoff, changes: ChangeSignal) {
        pid = record.pid
        slot = record.slot
        generation = record.generation
        release = record.release
        started = .now - .milliseconds(Int64(record.uptimeSeconds * 1000))
        startedAt = record.startedAt
        procStartTime = 0
        ownSocket = nil
        pipes = (-1, -1)
        notify = nil
        containment = nil
        self.changes = changes
        state.withLock { $0.exit = record.signal.map { .signalled($0) } ?? .exited(record.exitStatus ?? -1) }
    }

    var label: String { "w\(slot) \(pid)" }

    static func start(_ launch: Launch) throws -> WorkerProcess {
        var out: [Int32] = [-1, -1], err: [Int32] = [-1, -1]
        // The children never inherit these beyond 0-2: the spawn closes every fd from 3 (4) up.
        guard pipe(&out) == 0 else { throw SystemError("creating a pipe for a worker of", path: launch.directory) }
        guard pipe(&err) == 0 else {
            close(out[0]); close(out[1])
            throw SystemError("creating a pipe for a worker of", path: launch.directory)
        }
        var pid: pid_t = 0
        let listeners = [launch.listener, launch.ownSocket?.fd].compactMap { $0 }
        let rc = CStringArrays.with(launch.argv, CStringArrays.entries(launch.environment)) { cArgv, cEnv in
            slipway_spawn_listeners(launch.directory, cArgv, cEnv, -1, out[1], err[1], listeners, Int32(listeners.count), &pid)
        }
        close(out[1]); close(err[1])
        guard rc == 0 else {
            close(out[0]); close(err[0])
            throw SystemError("starting a worker in", path: launch.directory, code: rc)
        }
        for fd in [out[0], err[0]] { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        let worker = WorkerProcess(pid: pid, launch: launch, pipes: (out[0], err[0]))
        worker.startWatcher(log: launch.log)
        launch.log.note("started '\(launch.display)' in \(launch.directory) (release \(launch.release), generation \(launch.generation))",
                        worker: worker.label)
        return worker
    }

    var snapshot: State { state.withLock { $0 } }
    var exit: ChildProcess.Termination? { state.withLock { $0.exit } }
    var isStopping: Bool { state.withLock { $0.stopping } }
    var uptime: Duration { .now - started }

    func record(_ health: WorkerHealth) {
        state.withLock { $0.health = health }
    }

    func signalGroup(_ signal: Int32) {
        kill(-pid, signal)
    }

    enum Readiness: Sendable, Equatable {
        case ready
        case exited(ChildProcess.Termination)
        case timedOut
    }

    /// Waits for `READY=1` (with `notify`), or for the worker to stay up `settle`.
    func waitReady(notify: Bool, timeout: Duration, settle: Duration) async -> Readiness {
        let deadline = started + timeout
        let settled = started + min(settle, timeout)
        while true {
            let seen = changes.generation
            let now = ContinuousClock.now
            let current = snapshot
            if let exit = current.exit { return .exited(exit) }
            if notify ? current.ready : now >= settled { return .ready }
            if now >= deadline { return .timedOut }
            await changes.wait(since: seen, until: notify ? deadline : settled)
        }
    }

    /// How the worker ended if it exits within `duration` from now; nil while it runs.
    func exit(within duration: Duration) async -> ChildProcess.Termination? {
        await waitExit(until: .now + duration)
    }

    /// Waits until the worker has exited, or `deadline`; returns how it ended, if it did.
    private func waitExit(until deadline: ContinuousClock.Instant?) async -> ChildProcess.Termination? {
        while true {
            let seen = changes.generation
            if let exit { return exit }
            if let deadline, ContinuousClock.now >= deadline { return nil }
            await changes.wait(since: seen, until: deadline)
        }
    }

    /// Sends `signal` to the worker's group, then SIGKILL after `timeout`; returns how it ended
    /// and whether it had to be killed. Runs to the end even if the caller is cancelled.
    @discardableResult
    func stop(signal: Int32, timeout: Duration, log: WorkerLog) async -> (ChildProcess.Termination, killed: Bool) {
        let stopped = await stopProcess(signal: signal, timeout: timeout, log: log)
        // Its group goes before the stop returns (the watcher ends it too, on its own thread): an
        // agent that exits right after, at its shutdown, left it behind, empty, when a helper
        // outside the worker's session was still being killed there.
        await containment?.end()
        return stopped
    }

    private func stopProcess(signal: Int32, timeout: Duration, log: WorkerLog) async -> (ChildProcess.Termination, killed: Bool) {
        state.withLock { $0.stopping = true }
        if let exit { return (exit, false) }
        let name = Workers.StopSignal.allCases.first { $0.number == signal }?.rawValue ?? String(cString: strsignal(signal))
        log.note("stopping with \(name) (SIGKILL after \(DurationText.format(timeout)))", worker: label)
        signalGroup(signal)
        if let exit = await waitExit(until: .now + timeout) { return (exit, false) }
        log.note("still running after \(DurationText.format(timeout)): SIGKILL", worker: label)
        signalGroup(SIGKILL)
        // The watcher reaps it (a pidfd, or every 100 ms without one) and signals.
        return (await waitExit(until: nil)!, true)
    }

    // MARK: The watcher thread

    private func startWatcher(log: WorkerLog) {
        let thread = Thread { [self] in
            watch(stdout: pipes.stdout, stderr: pipes.stderr, pidfd: slipway_pidfd_open(pid), notify: notify, log: log, containment: containment)
        }
        thread.name = "worker \(label)"
        thread.start()
    }

    private func watch(stdout: Int32, stderr: Int32, pidfd: Int32, notify: NotifySocket?, log: WorkerLog, containment: Containment?) {
        var streams: [(fd: Int32, name: String, pending: [UInt8])] = [(stdout, "out", []), (stderr, "err", [])]
        var exited = false
        var drainDeadline: ContinuousClock.Instant?
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            var fds = streams.filter { $0.fd >= 0 }.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            if !exited {
                fds.append(pollfd(fd: pidfd >= 0 ? pidfd : -1, events: Int16(POLLIN), revents: 0))
                if let notify { fds.append(pollfd(fd: notify.fd, events: Int16(POLLIN), revents: 0)) }
            }
            if fds.allSatisfy({ $0.fd < 0 }) { break }
            // Without a pidfd (old kernels) the exit is polled for every 100 ms.
            let wait: Int32 = exited ? 100 : (pidfd >= 0 ? 1000 : 100)
            let ready = poll(&fds, nfds_t(fds.count), wait)
            if ready < 0 && errno != EINTR { break }
            gate.enter()
            defer { gate.leave() }
            for index in streams.indices where streams[index].fd >= 0 {
                guard let entry = fds.first(where: { $0.fd == streams[index].fd }), entry.revents != 0 else { continue }
                let count = read(streams[index].fd, &buffer, buffer.count)
                if count > 0 {
                    streams[index].pending += buffer[..<count]
                    while let newline = streams[index].pending.firstIndex(of: 0x0A) {
                        log.write(streams[index].pending[..<newline], worker: label, stream: streams[index].name)
                        streams[index].pending.removeSubrange(...newline)
                    }
                    if streams[index].pending.count > WorkerLog.maxLine {
                        log.write(streams[index].pending, worker: label, stream: streams[index].name)
                        streams[index].pending.removeAll()
                    }
                } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
                    if !streams[index].pending.isEmpty { log.write(streams[index].pending, worker: label, stream: streams[index].name) }
                    close(streams[index].fd)
                    streams[index].fd = -1
                }
            }
            if let notify, !exited {
                for (key, value) in notify.receive() {
                    switch key {
                    case "READY" where value == "1":
                        let first = state.withLock { state -> Bool in
                            defer { state.ready = true }
                            return !state.ready
                        }
                        if first {
                            log.note("ready (READY=1)", worker: label)
                            changes.signal()
                        }
                    case "STATUS":
                        state.withLock { $0.status = String(value.prefix(200)) }
                    default: break
                    }
                }
            }
            if !exited, let termination = ChildProcess.reap(pid) {
                exited = true
                // Anything the worker left running in its group goes with it.
                signalGroup(SIGKILL)
                log.note("exited: \(termination.explanation)", worker: label)
                state.withLock { $0.exit = termination }
                changes.signal()
                // After the exit is known (the supervisor must not wait on it): whatever the
                // worker started, inside or outside its group, ends now.
                containment?.end()
                drainDeadline = .now + .seconds(2)
            }
            if let drainDeadline, ContinuousClock.now >= drainDeadline { break }
        }
        for stream in streams where stream.fd >= 0 { close(stream.fd) }
        if pidfd >= 0 { close(pidfd) }
        notify?.close()
        ownSocket?.close()
    }
}
