import CSpawn
import Foundation

/// A child process in its own session and process group, so it and everything it starts can
/// be signalled together and nothing it leaves behind outlives it.
struct ChildProcess: Sendable {
    let pid: pid_t
    /// The app's code (a build or migrate step run as its account) lives in its own
    /// containment, ended with the step: nothing it started outlives it.
    var containment: Containment?
    /// Started below a subreaper (`spawnReaped`): SIGTERM asks the reaper to end the step, and
    /// it must not be SIGKILLed before it has swept (its strays would go to init).
    var reaped = false

    enum Termination: Sendable, Equatable {
        case exited(Int32)
        case signalled(Int32)
        case timedOut
        case cancelled

        var succeeded: Bool { self == .exited(0) }

        var explanation: String {
            switch self {
            case .exited(let code): return "exited with status \(code)"
            case .signalled(let signal): return "was killed by signal \(signal) (\(String(cString: strsignal(signal))))"
            case .timedOut: return "timed out and was stopped"
            case .cancelled: return "was stopped because the agent is shutting down"
            }
        }
    }

    /// Starts `/bin/sh -c command` in `directory`, with exactly `environment`, output to `outputFD`.
    /// With `account`, it runs as that account (the agent runs as root).
    /// `mechanism` is the host's (`Containment.mechanism`); tests pass `.subreaper` to try the fallback.
    static func spawnShell(_ command: String, in directory: String, environment: [String: String], outputFD: Int32,
                           account: AppAccount? = nil, mechanism: Containment.Mechanism = Containment.mechanism) throws -> ChildProcess {
        let shell = ["/bin/sh", "-c", command]
        var argv = account.map { $0.wrap(shell) } ?? shell
        let envp = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        if account != nil, mechanism == .subreaper {
            return try spawnReaped(argv: argv, environment: envp, directory: directory, output: outputFD)
        }
        let containment = account.map { _ in Containment.make("step", mechanism: mechanism) }
        if let containment { argv = containment.wrap(argv) }
        do {
            var child = try spawn(argv: argv, environment: envp, directory: directory, stdout: outputFD, stderr: outputFD)
            child.containment = containment
            return child
        } catch {
            containment?.end()
            throw error
        }
    }

    static func spawn(argv: [String], environment: [String], directory: String, stdout: Int32, stderr: Int32) throws -> ChildProcess {
        var pid: pid_t = 0
        let rc = CStringArrays.with(argv, environment) { cArgv, cEnv in slipway_spawn(directory, cArgv, cEnv, -1, stdout, stderr, -1, &pid) }
        guard rc == 0 else { throw SystemError("starting \(argv[0]) in", path: directory, code: rc) }
        return ChildProcess(pid: pid)
    }

    /// How long a reaper waits after SIGTERM before it kills what is left (`slipway_spawn_reaped`).
    static let reaperGrace: Int32 = 5

    /// `argv` below a child subreaper: the pid is the reaper's, which exits only once nothing
    /// the step started is left.
    static func spawnReaped(argv: [String], environment: [String], directory: String, output: Int32) throws -> ChildProcess {
        var pid: pid_t = 0
        let rc = CStringArrays.with(argv, environment) { cArgv, cEnv in
            slipway_spawn_reaped(directory, cArgv, cEnv, -1, output, output, reaperGrace, &pid)
        }
        guard rc == 0 else { throw SystemError("starting \(argv[0]) in", path: directory, code: rc) }
        var child = ChildProcess(pid: pid)
        child.reaped = true
        return child
    }

    /// Signals the whole process group.
    func signalGroup(_ signal: Int32) {
        kill(-pid, signal)
    }

    /// Waits for the process to end, stopping its group (SIGTERM, then SIGKILL after `grace`)
    /// when `timeout` passes or the task is cancelled. Any strays left in the group are killed.
    func wait(timeout: Duration, grace: Duration = .seconds(5)) async -> Termination {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var interval = Duration.milliseconds(2)
        while true {
            if let status = reap() {
                signalGroup(SIGKILL)
                await containment?.end()
                return status
            }
            if Task.isCancelled || clock.now >= deadline {
                let reason: Termination = Task.isCancelled ? .cancelled : .timedOut
                await stop(grace: grace)
                return reason
            }
            try? await Task.sleep(for: interval)
            interval = min(interval * 2, .milliseconds(50))
        }
    }

    /// SIGTERM to the group, SIGKILL after `grace`, and reap. Runs to the end even when the
    /// caller is cancelled: the group must be gone before we return.
    func stop(grace: Duration) async {
        signalGroup(SIGTERM)
        await Task.detached { [self] in
            let clock = ContinuousClock()
            let deadline = clock.now + (reaped ? max(grace, .seconds(Int64(Self.reaperGrace))) + .seconds(5) : grace)
            while clock.now < deadline {
                if reap() != nil {
                    signalGroup(SIGKILL)
                    return
                }
                try? await Task.sleep(for: .milliseconds(20))
            }
            signalGroup(SIGKILL)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        }.value
        await containment?.end()
    }

    private func reap() -> Termination? {
        Self.reap(pid)
    }

    /// A non-blocking waitpid: how `pid` ended, or nil while it runs.
    static func reap(_ pid: pid_t) -> Termination? {
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        guard result == pid else { return result < 0 && errno == ECHILD ? .exited(-1) : nil }
        if status & 0x7f == 0 { return .exited((status >> 8) & 0xff) }
        return .signalled(status & 0x7f)
    }
}
