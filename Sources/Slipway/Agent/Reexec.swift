import Foundation
import Logging
import SlipwayCore

/// Re-executing the agent in place (issue 19), the way nginx upgrades its own binary: the same
/// pid runs the binary now at the agent's path (the new version after an upgrade), and takes
/// over every worker, socket and pipe instead of restarting them.
///
/// The old image checks the new binary first (`agent --handover-check` must answer with the
/// record version it writes: a script or a broken build is refused and the old image goes on),
/// writes the `HandoverRecord`, clears close-on-exec on exactly the fds it names, keeps an fd
/// of its own executable and `execve`s. The new image finds `SLIPWAY_HANDOVER` (the record's
/// path) and `SLIPWAY_HANDOVER_EXE` (the old image's fd); if it cannot read the record or take
/// the workers over, it `fexecve`s the old image from that fd with `SLIPWAY_HANDOVER_FALLBACK`
/// saying why, and the old image takes everything back.
public enum Reexec {
    static let recordVariable = "SLIPWAY_HANDOVER"
    static let executableVariable = "SLIPWAY_HANDOVER_EXE"
    static let fallbackVariable = "SLIPWAY_HANDOVER_FALLBACK"
    /// Unix time just before `execve`, for the re-exec's timeline.
    static let execTimeVariable = "SLIPWAY_HANDOVER_EXEC_AT"
    /// Makes a new image refuse the handover, so tests can see the old image come back. Ignored
    /// by an image that is itself the comeback.
    static let testRefusalVariable = "SLIPWAY_TEST_HANDOVER_REFUSE"
    /// Makes the next `execve` fail (its target a path that does not exist), once: tests see
    /// the old image go on after the check passed and the workers were frozen.
    static let testExecFailureVariable = "SLIPWAY_TEST_EXEC_FAIL"
    /// `slipway agent --handover-check` prints this followed by the record version it reads.
    public static let checkAnswer = "slipway-handover-record"
    /// The whole answer: `slipway-handover-record 1`.
    public static var handoverCheckAnswer: String { "\(checkAnswer) \(HandoverRecord.currentVersion)" }

    // MARK: The old image

    /// The binary at the path this image was started from: `/proc/self/exe`'s target, which
    /// names the path even after the file there was replaced (` (deleted)` is dropped).
    static func executablePath() -> String? {
        guard var path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return nil }
        if path.hasSuffix(" (deleted)") { path.removeLast(" (deleted)".count) }
        return path
    }

    /// Runs `path agent --handover-check` (5 s at most); nil when it reads this record version.
    /// Spawned like a build step (its own session, every other fd closed in one call), waited
    /// for by its exit on a thread of its own (no polling); what it printed is then read without
    /// blocking, so a script that leaves a child holding the pipe cannot hold the re-exec up.
    static func check(_ path: String) async -> String? {
        var output: [Int32] = [-1, -1]
        guard pipe(&output) == 0 else { return "cannot make a pipe to run \(path): \(String(cString: strerror(errno)))" }
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer {
            close(output[0])
            if null >= 0 { close(null) }
        }
        let child: ChildProcess
        do {
            child = try ChildProcess.spawn(argv: [path, "agent", "--handover-check"], environment: checkEnvironment(),
                                           directory: "/", stdout: output[1], stderr: null)
        } catch {
            close(output[1])
            return "\(path) does not run: \(error)"
        }
        close(output[1])
        let overdue = Task {
            guard (try? await Task.sleep(for: .seconds(5))) != nil else { return false }
            child.signalGroup(SIGKILL)
            return true
        }
        let status = await OwnThread.run { [pid = child.pid] in
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            return status
        }
        overdue.cancel()
        child.signalGroup(SIGKILL)
        if await overdue.value {
            return "\(path) did not answer 'agent --handover-check' within 5 s"
        }
        let answer = String(decoding: Self.readAvailable(output[0]), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let exitCode = status & 0x7f == 0 ? (status >> 8) & 0xff : -1
        guard exitCode == 0, answer == "\(checkAnswer) \(HandoverRecord.currentVersion)" else {
            let shown = answer.isEmpty ? "nothing" : "'\(answer.prefix(120))'"
            let ended = exitCode >= 0 ? "status \(exitCode)" : "killed by signal \(status & 0x7f)"
            return "\(path) answered \(shown) (\(ended)) to 'agent --handover-check', "
                + "not '\(checkAnswer) \(HandoverRecord.currentVersion)': it cannot take this agent's workers over"
        }
        return nil
    }

    /// The agent's environment for the check, without what only a re-exec's new image may see.
    private static func checkEnvironment() -> [String] {
        ProcessInfo.processInfo.environment.filter { $0.key != recordVariable && $0.key != executableVariable }
            .sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
    }

    /// What is in the pipe now (up to 4 KiB), without waiting for more.
    private static func readAvailable(_ fd: Int32) -> [UInt8] {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 4096 {
            let count = read(fd, &buffer, buffer.count)
            if count <= 0 { break }
            bytes += buffer[..<count]
        }
        return bytes
    }

    /// `execve(path)` keeping `record`'s fds and an fd of this image's executable. Returns only
    /// when `execve` failed, with why; by then every fd is close-on-exec again.
    static func exec(path: String, record: HandoverRecord, recordPath: String, notifySocket: String?) -> String {
        let own = open("/proc/self/exe", O_RDONLY | O_CLOEXEC)
        keepOnlyAcrossExec(record.fds + (own >= 0 ? [own] : []))
        var environment = ProcessInfo.processInfo.environment
        environment[fallbackVariable] = nil
        environment[recordVariable] = recordPath
        environment[executableVariable] = own >= 0 ? String(own) : nil
        if let notifySocket { environment["NOTIFY_SOCKET"] = notifySocket }
        var target = path
        if environment[testExecFailureVariable] == "1" {
            unsetenv(testExecFailureVariable)
            environment[testExecFailureVariable] = nil
            target = path + ".missing-for-a-test"
        }
        environment[execTimeVariable] = String(Date().timeIntervalSince1970)
        let error = execute(environment: environment) { argv, envp in execve(target, argv, envp) }
        for fd in record.fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        if own >= 0 { close(own) }
        return "execve \(target): \(error)"
    }

    /// Exactly `kept` cross the exec: anything else opened without O_CLOEXEC (a library's
    /// socket, the API's listener) must not, or the next image could not bind the API again.
    static func keepOnlyAcrossExec(_ kept: [Int32]) {
        for fd in openFDs() where fd > 2 && !kept.contains(fd) {
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0 && flags & FD_CLOEXEC == 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
        }
        for fd in kept { _ = fcntl(fd, F_SETFD, 0) }
    }

    /// The fds open now (the listing's own fd, closed by then, is left out).
    static func openFDs() -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))?.compactMap { Int32($0) } ?? []).filter { fcntl($0, F_GETFD) >= 0 }
    }

    /// Runs `call` (an exec) with this process's argv and `environment`. SIGUSR2 and SIGHUP are
    /// ignored across the exec (a handler would reset to "terminate" until the new image
    /// installs its own) and the signal mask is emptied (the calling thread, one of the
    /// concurrency pool's, blocks signals, and the new image would inherit that). Returns the
    /// error when the exec failed, with dispositions and mask as they were.
    static func execute(environment: [String: String], _ call: (CStringArrays.Array, CStringArrays.Array) -> Int32) -> String {
        var ignore = sigaction()
        ignore.__sigaction_handler.sa_handler = SIG_IGN
        var previousUSR2 = sigaction(), previousHUP = sigaction()
        sigaction(SIGUSR2, &ignore, &previousUSR2)
        sigaction(SIGHUP, &ignore, &previousHUP)
        var empty = sigset_t(), mask = sigset_t()
        sigemptyset(&empty)
        pthread_sigmask(SIG_SETMASK, &empty, &mask)
        let code = CStringArrays.with(CommandLine.arguments, CStringArrays.entries(environment)) { argv, envp in
            _ = call(argv, envp)
            return errno
        }
        pthread_sigmask(SIG_SETMASK, &mask, nil)
        sigaction(SIGUSR2, &previousUSR2, nil)
        sigaction(SIGHUP, &previousHUP, nil)
        return String(cString: strerror(code))
    }

    // MARK: The new image

    /// What the previous image of this process left for this one, taken out of the environment
    /// (nothing the agent starts inherits it).
    public struct Incoming: Sendable {
        public let recordPath: String
        let executableFD: Int32?
        /// Set when this image is the old one coming back: why the new one gave up.
        public let fallbackReason: String?
        let refuseForTest: Bool
        /// Unix times: just before the previous image's `execve`, and this image's start.
        let execAt: Double?
        let startedAt: Double
        /// The fds open when this image started (above stdio): what the previous image passed.
        let inherited: [Int32]

        /// Call first thing: the time it is called is this image's start in the timeline.
        public static func take() -> Incoming? {
            let startedAt = Date().timeIntervalSince1970
            let environment = ProcessInfo.processInfo.environment
            let names: [String] = [recordVariable, executableVariable, fallbackVariable, testRefusalVariable, execTimeVariable]
            defer { names.forEach { unsetenv($0) } }
            guard let path = environment[recordVariable], !path.isEmpty else { return nil }
            return Incoming(recordPath: path, executableFD: environment[executableVariable].flatMap { Int32($0) },
                            fallbackReason: environment[fallbackVariable], refuseForTest: environment[testRefusalVariable] == "1",
                            execAt: environment[execTimeVariable].flatMap { Double($0) }, startedAt: startedAt,
                            inherited: openFDs().filter { $0 > 2 })
        }

        /// Reads the record (refusing it when a test asks to).
        public func load() throws -> HandoverRecord {
            if refuseForTest && fallbackReason == nil {
                throw HandoverError("\(testRefusalVariable)=1: this image refuses the handover (a test of the way back)")
            }
            return try HandoverRecord.load(path: recordPath)
        }

        /// The handover is done: the record and the old image's fd go.
        public func finish() {
            unlink(recordPath)
            if let executableFD { close(executableFD) }
        }

        /// Re-executes the previous image from its fd, which takes the workers back. Returns
        /// only when that is impossible (this image is already the comeback, no fd, or
        /// `fexecve` failed), with why.
        public func fallBack(reason: String) -> String {
            if let fallbackReason { return "the previous image could not take the workers back either (it came back because: \(fallbackReason))" }
            guard let executableFD else { return "no fd of the previous image was kept" }
            // The API may already listen in this image: only what the previous image passed
            // (the record's fds, whether or not this image could read it) goes back.
            Reexec.keepOnlyAcrossExec(inherited)
            var environment = ProcessInfo.processInfo.environment
            environment[recordVariable] = recordPath
            environment[executableVariable] = String(executableFD)
            environment[fallbackVariable] = String(reason.replacingOccurrences(of: "\n", with: " ").prefix(500))
            environment[testRefusalVariable] = nil
            environment[execTimeVariable] = String(Date().timeIntervalSince1970)
            let error = Reexec.execute(environment: environment) { argv, envp in fexecve(executableFD, argv, envp) }
            return "fexecve of the previous image: \(error)"
        }

        /// Nobody can take the workers over: closes the record's fds and removes it, so the
        /// workers are found as a previous agent's (by their worker tables) and replaced.
        public func abandon() {
            if let record = try? HandoverRecord.load(path: recordPath) { record.fds.forEach { close($0) } }
            finish()
        }
    }
}
