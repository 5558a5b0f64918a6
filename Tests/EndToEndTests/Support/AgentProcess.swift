import Foundation

/// `slipway agent --config CONFIG` running in the background, its stderr appended to `log`.
final class AgentProcess {
    let process = Process()

    init(config: String, log: String) throws {
        process.executableURL = URL(fileURLWithPath: Fixture.binary)
        process.arguments = ["agent", "--config", config]
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        process.standardOutput = FileHandle.nullDevice
        let handle = FileHandle(forWritingAtPath: log)
        handle?.seekToEndOfFile()
        process.standardError = handle
        try process.run()
    }

    /// SIGTERM, as systemd stops it; SIGKILL after 20 s. Returns whether it exited on SIGTERM.
    @discardableResult
    func stop() -> Bool {
        guard process.isRunning else { return true }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(20)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        guard process.isRunning else { return true }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        return false
    }

    deinit { stop() }
}
