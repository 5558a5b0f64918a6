import ArgumentParser
import Foundation
import Slipway
import SlipwayCore

struct LogsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Show an app's worker output (stdout, stderr) and the supervisor's notes, or with --build a release's build log.",
        discussion: """
        Lines read: TIME [wSLOT PID] STREAM: text, where STREAM is out, err, or slipway for the \
        supervisor's own notes (started, ready, stopping, exited, restarts). The file is \
        STATE_DIR/logs/APP/workers.log, rotated by size into workers.log.1 … .3. \
        --build shows the build log instead: the output of the build steps and of the migrate \
        steps (expand, contract, and a waiting host's checks) of the newest deploy attempt, or of \
        --release ID (see 'slipway releases APP'); it is STATE_DIR/logs/APP/RELEASE.build.log.
        """
    )

    @Argument(help: "The app's name.")
    var app: String

    @Option(name: [.short, .customLong("lines")], help: "How many of the last lines to show.")
    var n: Int = 50

    @Flag(name: [.short, .long], help: "Keep printing new lines as they are written (across rotations).")
    var follow = false

    @Flag(help: "Show a build log (build, expand, contract output) instead of the workers' output.")
    var build = false

    @Option(help: ArgumentHelp("With --build: the release whose log to show (default: the newest attempt).", valueName: "id"))
    var release: String?

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        try await Self.reporting {
            let config = try options.load()
            let name = try AppName.argument(app)
            if build || release != nil {
                try printBuildLog(of: name, stateDir: config.stateDir)
                return
            }
            let path = WorkerLogReader.path(stateDir: config.stateDir, app: name)
            let reader = WorkerLogReader(path: path)
            guard reader.exists || follow else {
                throw CLIError("no worker log for \(name) at \(path): the app has not run workers on this host")
            }
            for line in reader.lastLines(max(0, n)) { print(TerminalText.escaped(line)) }
            guard follow else { return }
            var position = reader.end()
            while !Task.isCancelled {
                try await Task.sleep(for: .milliseconds(200))
                let (lines, next) = reader.read(from: position)
                for line in lines { print(TerminalText.escaped(line)) }
                FileHandle.standardOutput.synchronizeFile()
                position = next
            }
        }
    }

    private func printBuildLog(of app: AppName, stateDir: String) throws {
        let directory = BuildLog.directory(stateDir: stateDir, app: app)
        let attempts = BuildLog.releases(in: directory)
        let id: ReleaseID
        if let release {
            guard let chosen = ReleaseID(release), attempts.contains(chosen) else {
                throw CLIError("no build log for release '\(release)' of \(app) in \(directory)")
            }
            id = chosen
        } else {
            guard let newest = attempts.max() else { throw CLIError("no build logs for \(app) in \(directory)") }
            id = newest
        }
        let path = BuildLog.path(in: directory, release: id)
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        print("==> \(path)")
        print(TerminalText.escaped(lines.suffix(max(0, n) + 1).joined(separator: "\n"), keepNewlines: true), terminator: text.hasSuffix("\n") ? "" : "\n")
    }
}
