import ArgumentParser
import Foundation
import Slipway
import SlipwayCore

struct LogsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Show an app's worker output (stdout, stderr) and the supervisor's notes.",
        discussion: """
        Lines read: TIME [wSLOT PID] STREAM: text, where STREAM is out, err, or slipway for the \
        supervisor's own notes (started, ready, stopping, exited, restarts). The file is \
        STATE_DIR/logs/APP/workers.log, rotated by size into workers.log.1 … .3. Build output is \
        in the build logs next to it (see 'slipway releases APP').
        """
    )

    @Argument(help: "The app's name.")
    var app: String

    @Option(name: [.short, .customLong("lines")], help: "How many of the last lines to show.")
    var n: Int = 50

    @Flag(name: [.short, .long], help: "Keep printing new lines as they are written (across rotations).")
    var follow = false

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        try await Self.reporting {
            let config = try options.load()
            guard let name = AppName(app) else { throw CLIError("'\(app)' is not a valid app name") }
            let path = WorkerLogReader.path(stateDir: config.stateDir, app: name)
            let reader = WorkerLogReader(path: path)
            guard reader.exists || follow else {
                throw CLIError("no worker log for \(name) at \(path): the app has not run workers on this host")
            }
            for line in reader.lastLines(max(0, n)) { print(line) }
            guard follow else { return }
            var position = reader.end()
            while !Task.isCancelled {
                try await Task.sleep(for: .milliseconds(200))
                let (lines, next) = reader.read(from: position)
                for line in lines { print(line) }
                FileHandle.standardOutput.synchronizeFile()
                position = next
            }
        }
    }
}
