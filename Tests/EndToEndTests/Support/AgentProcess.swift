import Foundation

/// `slipway agent --config CONFIG` running in the background, its stderr appended to `log`.
final class AgentProcess {
    let process = Process()
    /// The agent's pid (with `detached`, not the pid of `process`).
    let pid: Int32
    let detached: Bool

    /// `binary`: another copy of slipway (the re-exec tests replace it while it runs).
    /// `detached`: the agent is not this process's child (a Python one-liner starts it and exits), for
    /// agents that re-exec themselves: Foundation's Process, seeing its child exec from a
    /// thread other than its main one, waits on it with a blocking waitpid and stalls every
    /// other Process of the test.
    /// `environment`: added to this process's for the agent only (test hooks such as
    /// `SLIPWAY_TEST_EXEC_FAIL`).
    init(config: String, log: String, binary: String = Fixture.binary, detached: Bool = false, environment: [String: String] = [:]) throws {
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        self.detached = detached
        if detached {
            // Python's Popen closes every other fd (Foundation watches a child through one). The
            // agent gets a session of its own, as systemd gives a service: otherwise it shares
            // the kernel's autogroup (its CPU share) with the load clients the test runs.
            let script = "import json, os, subprocess, sys; err = open(sys.argv[3], 'ab'); "
                + "print(subprocess.Popen([sys.argv[1], 'agent', '--config', sys.argv[2]], stdin=subprocess.DEVNULL, "
                + "stdout=subprocess.DEVNULL, stderr=err, close_fds=True, start_new_session=True, "
                + "env=dict(os.environ, **json.loads(sys.argv[4]))).pid)"
            let extra = String(decoding: try JSONSerialization.data(withJSONObject: environment), as: UTF8.self)
            let result = try Fixture.run("/usr/bin/python3", ["-c", script, binary, config, log, extra], timeout: 10)
            guard let pid = Int32(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                throw FixtureError("no pid from the detached agent: \(result.output)")
            }
            self.pid = pid
            return
        }
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["agent", "--config", config]
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        process.standardOutput = FileHandle.nullDevice
        let handle = FileHandle(forWritingAtPath: log)
        handle?.seekToEndOfFile()
        process.standardError = handle
        try process.run()
        pid = process.processIdentifier
    }

    var isRunning: Bool {
        detached ? WorkerApp.isRunning(pid) : process.isRunning
    }

    /// SIGTERM, as systemd stops it; SIGKILL after 20 s. Returns whether it exited on SIGTERM.
    @discardableResult
    func stop() -> Bool {
        guard isRunning else { return true }
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(20)
        while isRunning && Date() < deadline { usleep(20_000) }
        guard isRunning else { return true }
        kill(pid, SIGKILL)
        if !detached { process.waitUntilExit() }
        return false
    }

    deinit { stop() }
}
