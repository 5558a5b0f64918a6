import Foundation
import SlipwayCore

/// Runs an app's migrate steps for one release: `expand`, `contract`, or a waiting host's
/// `check`, each as `/bin/sh -c` in the release's backend directory, as the app's account, with
/// the app's environment (env_file included, see `AppEnvironment`) and SLIPWAY_STEP, output
/// appended to the release's build log, bounded by `migrate.timeout`.
struct MigrationRunner {
    let migrate: Migrate
    /// `<apps_root>/<app>/releases/<id>/backend`
    let directory: String
    let environment: AppEnvironment
    let logPath: String
    /// agent.yaml `build_log_max`: migrate output shares the release's capped build log.
    var logMax: Int = AgentConfig.defaultBuildLogMax
    /// A path under the app's staging root, given as SLIPWAY_STAGING: it marks the step's
    /// processes, so a pass after an agent crash stops a step left running (see `StaleBuilds`).
    let marker: String

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The runner for `release` of `app`: its backend directory, the app's account and
    /// environment, its build log, and a marker under the app's staging root.
    /// `environment`: the app's, when the deploy has read it already (its env_file is read once a deploy).
    static func forRelease(_ release: ReleaseID, of app: ResolvedApp, migrate: Migrate, config: AgentConfig,
                           environment known: AppEnvironment? = nil) throws -> MigrationRunner {
        let layout = AppLayout(appsRoot: config.appsRoot, app: app.manifest.app)
        var environment = try known ?? AppEnvironment.make(manifest: app.manifest, release: release, sha: app.sourceSHA, config: config)
        // The build's home and caches (the manifest's env still wins).
        let home = BuildHome(layout: layout)
        try home.prepare(for: environment.account)
        let declared = Set(environment.declared.map(\.name))
        for (name, value) in home.environment where !declared.contains(name) { environment.variables[name] = value }
        var runner = MigrationRunner(migrate: migrate, directory: layout.release(release) + "/backend", environment: environment,
                                     logPath: BuildLog.path(in: BuildLog.directory(stateDir: config.stateDir, app: app.manifest.app), release: release),
                                     marker: layout.staging + "/\(release)")
        runner.logMax = config.buildLogMax
        return runner
    }

    /// Runs `expand` or `contract`; throws a failure that ends with the step's output tail.
    func run(_ stage: Stage) async throws {
        guard let command = stage == .expand ? migrate.expand : migrate.contract else { return }
        let log = try BuildLog.create(at: logPath, maxBytes: logMax)
        defer { log.close() }
        log.note("==> \(stage): \(command)")
        let clock = ContinuousClock()
        let started = clock.now
        let termination = try await spawn(command, step: stage.rawValue, log: log).wait(timeout: migrate.timeout)
        log.note("==> \(stage) \(termination.explanation) after \(DurationText.format(clock.now - started))")
        guard termination.succeeded else {
            var why = "the \(stage) step \(termination.explanation)"
            if termination == .timedOut { why += " (migrate.timeout is \(DurationText.format(migrate.timeout)))" }
            throw Failure(description: "\(why); last lines of \(logPath):\n\(BuildLog.tail(of: logPath))")
        }
    }

    /// On a host that does not migrate: runs `check` until it exits 0 (the migrating host's
    /// expand is done), at most `migrate.timeout` in all. Returns how long it waited.
    func waitForCheck() async throws -> Duration {
        guard let command = migrate.check else { return .zero }
        let log = try BuildLog.create(at: logPath, maxBytes: logMax)
        defer { log.close() }
        log.note("==> expand: waiting for another host's expand; check: \(command)")
        let clock = ContinuousClock()
        let started = clock.now
        let deadline = started + migrate.timeout
        var pause = Duration.milliseconds(250)
        var attempts = 0
        while true {
            attempts += 1
            let mark = log.size
            let termination = try await spawn(command, step: "check", log: log).wait(timeout: max(.zero, deadline - clock.now))
            if termination.succeeded {
                log.note("==> check passed on attempt \(attempts) after \(DurationText.format(clock.now - started))")
                return clock.now - started
            }
            if termination == .cancelled || Task.isCancelled {
                throw Failure(description: "the wait for the schema was stopped because the agent is shutting down")
            }
            let output = log.text(since: mark).trimmingCharacters(in: .whitespacesAndNewlines)
            guard clock.now + pause < deadline else {
                log.note("==> check \(termination.explanation); giving up after \(attempts) attempts")
                throw Failure(description: "the schema for this release was not ready after \(DurationText.format(migrate.timeout)) "
                    + "(migrate.timeout): migrate.check kept failing, last \(termination.explanation)\(output.isEmpty ? "" : ":\n\(output.suffix(2000))")\n"
                    + "check that a host in migrate.hosts deployed this release and that its expand succeeded")
            }
            try? await Task.sleep(for: pause)
            pause = min(pause * 2, .seconds(2))
        }
    }

    private func spawn(_ command: String, step: String, log: BuildLog) throws -> ChildProcess {
        var variables = environment.variables
        variables["SLIPWAY_STEP"] = step
        variables["SLIPWAY_STAGING"] = marker
        do {
            return try ChildProcess.spawnShell(command, in: directory, environment: variables, outputFD: log.fd, account: environment.account)
        } catch {
            throw Failure(description: "cannot start the \(step) step: \(error)")
        }
    }
}
