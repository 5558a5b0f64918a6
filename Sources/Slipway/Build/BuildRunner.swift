import Foundation
import SlipwayCore

/// Runs a manifest's build commands (`frontend.build`, `backend.build`) in the exported source
/// tree, each with a clean environment, all output into the release's build log, the whole
/// stage bounded by `build_timeout`. When the agent runs as root they run as the app's account.
struct BuildRunner {
    var account: AppAccount?

    struct Failure: Error, CustomStringConvertible {
        var step: String
        var termination: ChildProcess.Termination
        var logPath: String

        var description: String {
            let tail = BuildLog.tail(of: logPath)
            return "the \(step) build \(termination.explanation); last lines of \(logPath):\n\(tail)"
        }
    }

    /// The `PATH` builds, migrate steps and workers start with: never the agent's own (an
    /// operator's shell or a unit's PATH may name directories an app has no business in).
    static let basePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// The variables every build gets, before the manifest's own `env` (HOME and the caches
    /// are the build home's, `BuildHome.environment`).
    static func baseEnvironment(app: AppName, release: ReleaseID, sha: String, staging: String) -> [String: String] {
        [
            "PATH": basePath,
            "HOME": "/",
            "LANG": "C.UTF-8",
            "SLIPWAY_APP": app.value,
            "SLIPWAY_RELEASE": release.description,
            "SLIPWAY_SHA": sha,
            // Marks every process of this build, so a crashed agent's next pass can find strays.
            "SLIPWAY_STAGING": staging,
        ]
    }

    /// Runs each `(step, command)` in order in `directory`; throws the first failure.
    func run(_ steps: [(step: String, command: String)], in directory: String, environment: [String: String],
             timeout: Duration, log: BuildLog) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        for (step, command) in steps {
            log.note("==> \(step) build: \(command)")
            let started = clock.now
            let child = try ChildProcess.spawnShell(command, in: directory, environment: environment, outputFD: log.fd, account: account)
            let remaining = deadline - clock.now
            let termination = await child.wait(timeout: max(remaining, .zero))
            log.note("==> \(step) build \(termination.explanation) after \(DurationText.format(clock.now - started))")
            guard termination.succeeded else { throw Failure(step: step, termination: termination, logPath: log.path) }
        }
    }
}
