import Foundation
import Logging
import SlipwayCore

/// One deploy of one app, as the named stages of `Stage.deploy`: fetch (export the source
/// commit into staging), build (run the build steps and lay out the release), expand (publish
/// it and run `migrate.expand`), switch (point `current` at it), reload (roll the workers onto
/// it), verify (health), contract (`migrate.contract`), prune. Anything that fails before the
/// switch leaves `current` exactly as it was; a failed reload or verify switches `current` back
/// and leaves the old workers serving; a failed contract leaves the new release live.
struct Deployment {
    let app: ResolvedApp
    let store: ReleaseStore
    let mirrors: SourceMirrors
    let stateDir: String
    let manifestsCommit: String
    let logger: Logger
    /// The newer manifests commit a push announced during this deploy, if any: checked just
    /// before the switch, so a superseded release is never switched to.
    var supersededBy: @Sendable () -> String? = { nil }
    /// Where stage events go (the running agent's event stream, or a CLI printing them).
    var onEvent: @Sendable (AgentEvent) -> Void = { _ in }
    /// The running agent's supervisor: with it, a backend with workers gets the reload and
    /// verify stages. Nil for a one-shot pass, which does not run workers.
    var supervisor: Supervisor?
    var config: AgentConfig?

    struct StageFailure: Error, CustomStringConvertible {
        var stage: Stage
        var message: String
        var logPath: String?

        var description: String { message }
    }

    func run() async -> DeployOutcome {
        let name = app.manifest.app
        // Failed attempts never publish a release but keep their log: their ids stay taken too.
        let logDir = BuildLog.directory(stateDir: stateDir, app: name)
        let id = ReleaseID.next(at: .now, sha: app.sourceSHA, existing: store.releaseIDs() + BuildLog.releases(in: logDir))
        let logPath = BuildLog.path(in: logDir, release: id)
        var timings: [ReleaseRecord.StageTiming] = []
        var staging: String?

        let reporter = StageReporter(app: name, logger: logger, onEvent: onEvent)
        func timed<T>(_ stage: Stage, _ body: () async throws -> T) async throws -> T {
            do {
                let (value, timing) = try await reporter.run(stage, release: id, log: stage == .build ? logPath : nil, body)
                timings.append(timing)
                return value
            } catch {
                throw error as? StageFailure ?? StageFailure(stage: stage, message: "\(error)", logPath: nil)
            }
        }

        do {
            let stagingDir = try store.makeStaging(for: id)
            staging = stagingDir
            let source = stagingDir + "/src"
            try await timed(.fetch) {
                let repo = try mirrors.open(app.manifest.source.repo)
                let summary = try TreeExporter(repository: repo, store: ObjectStore(root: store.layout.objects))
                    .export(commit: app.sourceSHA, into: source)
                logger.debug("exported", metadata: [
                    "files": "\(summary.files)", "linked": "\(summary.objects.linked)", "written": "\(summary.objects.written)",
                ])
            }
            try await timed(.build) {
                let account = try appAccount()
                try store.restrict(stagingDir, to: account)
                try await build(in: source, id: id, staging: stagingDir, logPath: logPath, account: account)
                // With no build step nothing but the export wrote the tree (root's directories,
                // the store's read-only objects): a walk of every file would find nothing to seal.
                if app.manifest.frontend?.build != nil || app.manifest.backend?.build != nil { try seal(source) }
                try assemble(staging: stagingDir, account: account)
            }
            try checkSuperseded()
            let workers = try workerTarget(id)
            let previous = store.current()
            let migrate = app.manifest.migrate
            let role = app.migrationRole
            var published = false
            if let migrate, role.gatesSwitch(migrate) {
                try await timed(.expand) {
                    // Published first, so the step runs in the release's own directory; `pending`
                    // until it passes, so nothing switches to it before its schema exists.
                    try writeRecord(into: stagingDir + "/release", id: id, timings: timings, result: .pending)
                    try store.publish(stagingDir + "/release", as: id)
                    published = true
                    try await expand(migrate, role: role, id: id, logPath: logPath)
                    try store.markExpanded(id)
                }
                try checkSuperseded()
            }
            try await timed(.switch) {
                if !published {
                    try writeRecord(into: stagingDir + "/release", id: id, timings: timings, result: .succeeded)
                    try store.publish(stagingDir + "/release", as: id)
                }
                // Served frontends: the new release's files join the archive before it goes live,
                // so a page loaded from it still finds its assets if the release is switched back.
                if config?.nginx != nil, app.manifest.frontend?.serve != nil {
                    try? FrontendArchive(layout: store.layout).refresh(releases: store.releaseIDs())
                }
                try store.switchCurrent(to: id)
            }
            try? SafeTree.remove(stagingDir)
            staging = nil
            if let supervisor, let workers {
                let app = await supervisor.supervisor(for: name)
                try await timed(.reload) {
                    if case .failed(let stage, let reason) = await app.reload(to: workers) {
                        throw switchBack(from: id, to: previous, stage: stage, reason: reason)
                    }
                }
                try await timed(.verify) {
                    if case .failed(let stage, let reason) = await app.verify() {
                        throw switchBack(from: id, to: previous, stage: stage, reason: reason)
                    }
                }
            }
            // The new release serves and is healthy: the old schema can go. A failure leaves the
            // release live (it works with the expanded schema by design); the next pass retries.
            var contractFailure: String?
            if let migrate, role.contracts(migrate) {
                do {
                    try await timed(.contract) {
                        try await contract(migrate, id: id, logPath: logPath)
                    }
                } catch let failure as StageFailure where !Task.isCancelled {
                    contractFailure = failure.message
                }
            } else if migrate?.contract != nil {
                // Another host contracts once its own verify passed: from here on this host treats
                // the release as the boundary a rollback does not cross without --force.
                try? store.markContracted(id)
            }
            try await timed(.prune) {
                try await prune()
            }
            return DeployOutcome(release: id, sha: app.sourceSHA, result: .succeeded, failedStage: contractFailure.map { _ in .contract },
                                 error: contractFailure, logPath: FileOps.exists(logPath) ? logPath : nil, stages: timings, finishedAt: .now)
        } catch {
            if let staging { try? SafeTree.remove(staging) }
            let failure = error as? StageFailure ?? StageFailure(stage: .fetch, message: "\(error)")
            let published = store.releaseIDs().contains(id)
            return DeployOutcome(release: published ? id : nil, sha: app.sourceSHA, result: .failed, failedStage: failure.stage,
                                 error: failure.message, logPath: FileOps.exists(logPath) ? logPath : nil, stages: timings, finishedAt: .now)
        }
    }

    private func checkSuperseded() throws {
        if let newer = supersededBy() {
            throw StageFailure(stage: .switch, message: "superseded by manifests commit \(newer.prefix(12)) before the switch; the next pass deploys it")
        }
    }

    /// The expand stage after publishing: run `migrate.expand` here, or wait for another host's
    /// (`migrate.check`). A failure marks the release failed; `current` and the workers are untouched.
    private func expand(_ migrate: Migrate, role: MigrationRole, id: ReleaseID, logPath: String) async throws {
        do {
            let runner = try migrationRunner(migrate, id: id)
            if role == .waits {
                let waited = try await runner.waitForCheck()
                logger.info("schema ready after waiting \(DurationText.format(waited)) for another host's expand", metadata: ["stage": "expand"])
            } else {
                try await runner.run(.expand)
            }
        } catch {
            let message = "\(error)"
            // A step cut short by the agent's shutdown says nothing about the release: it stays
            // pending (never switched to) and the next start deploys anew.
            if !Task.isCancelled { try? store.markFailed(id, stage: .expand, reason: message) }
            throw StageFailure(stage: .expand, message: message + "; current and the workers are untouched", logPath: logPath)
        }
    }

    /// The contract stage: `migrate.contract`, then the release is marked contracted.
    private func contract(_ migrate: Migrate, id: ReleaseID, logPath: String) async throws {
        do {
            try await migrationRunner(migrate, id: id).run(.contract)
            try store.markContracted(id)
        } catch {
            throw StageFailure(stage: .contract, message: "\(error)", logPath: logPath)
        }
    }

    private func migrationRunner(_ migrate: Migrate, id: ReleaseID) throws -> MigrationRunner {
        guard let config else { throw MigrationRunner.Failure(description: "migrations need the agent's configuration") }
        return try MigrationRunner.forRelease(id, of: app, migrate: migrate, config: config)
    }

    /// The workers this release should get; a problem here (a missing account, a bad env_file)
    /// fails the deploy before the switch.
    private func workerTarget(_ id: ReleaseID) throws -> WorkerTarget? {
        guard supervisor != nil, let config else { return nil }
        do {
            return try WorkerTarget.make(manifest: app.manifest, release: id, sha: app.sourceSHA, config: config)
        } catch {
            throw StageFailure(stage: .reload, message: "\(error)")
        }
    }

    /// After the workers refused the new release: `current` goes back to where it was (or is
    /// removed on a first deploy), and the release is marked failed so it is not switched to again.
    private func switchBack(from id: ReleaseID, to previous: ReleaseID?, stage: Stage, reason: String) -> StageFailure {
        var message = reason
        do {
            if let previous {
                try store.switchCurrent(to: previous)
                message += "; current switched back to \(previous)"
            } else {
                store.unsetCurrent()
                message += "; current removed (there was no earlier release)"
            }
            // A rollout cut short by the agent's shutdown says nothing about the release.
            if !Task.isCancelled { try store.markFailed(id, stage: stage, reason: reason) }
        } catch {
            message += "; switching back failed: \(error)"
        }
        logger.error("\(stage) failed: \(message)", metadata: ["stage": "\(stage)"])
        return StageFailure(stage: stage, message: message)
    }

    /// The account the app's code runs as (nil when the agent is not root); see `AppAccount.forApp`.
    private func appAccount() throws -> AppAccount? {
        do {
            guard let config else { throw AppAccount.Refused(description: "builds need the agent's configuration") }
            return try AppAccount.forApp(app.manifest.app, declared: app.manifest.backend?.user, config: config, manifestPath: app.manifestPath)
        } catch {
            throw StageFailure(stage: .build, message: "\(error)")
        }
    }

    private func build(in source: String, id: ReleaseID, staging: String, logPath: String, account: AppAccount?) async throws {
        var steps: [(step: String, command: String)] = []
        if let command = app.manifest.frontend?.build { steps.append(("frontend", command)) }
        if let command = app.manifest.backend?.build { steps.append(("backend", command)) }
        guard !steps.isEmpty else { return }
        var environment = BuildRunner.baseEnvironment(app: app.manifest.app, release: id, sha: app.sourceSHA, staging: staging)
        let home = BuildHome(layout: store.layout)
        environment.merge(home.environment) { $1 }
        for variable in app.manifest.env { environment[variable.name] = variable.value }
        let log = try BuildLog.create(at: logPath, maxBytes: config?.buildLogMax ?? AgentConfig.defaultBuildLogMax)
        defer { log.close() }
        do {
            try home.prepare(for: account)
        } catch {
            throw StageFailure(stage: .build, message: "\(error)")
        }
        if let account {
            environment["USER"] = account.name
            // The build may write in its tree; the files it did not make stay read-only to it.
            do {
                try SafeTree.giveDirectories(source, to: (account.uid, account.gid))
            } catch {
                throw StageFailure(stage: .build, message: "handing the source tree to \(account.name): \(error)")
            }
        }
        do {
            try await BuildRunner(account: account).run(steps, in: source, environment: environment, timeout: app.manifest.buildTimeout, log: log)
        } catch let failure as BuildRunner.Failure {
            throw StageFailure(stage: .build, message: failure.description, logPath: logPath)
        }
    }

    /// Once built, the tree belongs to the agent: the app's workers can read it, not change it
    /// (see `SafeTree.seal`: modes lose group/other write and setuid/setgid, foreign hard links
    /// are copied). Done before anything in it is looked at, so nothing changes under the checks.
    private func seal(_ source: String) throws {
        do {
            let report = try SafeTree.seal(source)
            if report != SafeTree.SealReport() {
                logger.info("sealed the built tree", metadata: [
                    "stage": "build", "modes_changed": "\(report.modesChanged)", "copied": "\(report.copied)", "removed": "\(report.removed)",
                ])
            }
        } catch {
            throw StageFailure(stage: .build, message: "taking the built tree back from the build: \(error)")
        }
    }

    /// Lays the release out beside the source: frontend/, backend/ (with shared dirs linked in).
    private func assemble(staging: String, account: AppAccount?) throws {
        let source = staging + "/src"
        let release = staging + "/release"
        try FileOps.makeDirectory(release)
        if let frontend = app.manifest.frontend {
            let output = try ReleaseLayoutCheck.directory(frontend.output, in: source, what: "frontend.output")
            do {
                try FrontendOutputLinks.settle(output: output, declared: frontend.output)
            } catch let refused as FrontendOutputLinks.Refused {
                throw StageFailure(stage: .build, message: refused.description)
            }
            guard rename(output, release + "/frontend") == 0 else { throw SystemError("moving frontend output", path: output) }
        }
        if let backend = app.manifest.backend {
            let dir = try ReleaseLayoutCheck.directory(backend.dir, in: source, what: "backend.dir")
            guard rename(dir, release + "/backend") == 0 else { throw SystemError("moving backend", path: dir) }
            for path in app.manifest.shared {
                try linkShared(path, into: release + "/backend", account: account)
            }
            // The backend is the app's alone: its account's group may read it, other apps may not.
            try store.restrict(release + "/backend", to: account)
        }
    }

    /// `release.json`, written last, just before the release is published.
    private func writeRecord(into release: String, id: ReleaseID, timings: [ReleaseRecord.StageTiming], result: ReleaseRecord.Result) throws {
        let record = ReleaseRecord(
            app: app.manifest.app, id: id,
            source: .init(repo: app.manifest.source.repo, ref: app.manifest.source.ref.description, sha: app.sourceSHA),
            manifest: .init(commit: manifestsCommit, path: app.manifestPath),
            fingerprint: app.spec.fingerprint, createdAt: .now, stages: timings, result: result)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try FileOps.writeAtomically(Array(try encoder.encode(record)), to: release + "/" + ReleaseStore.recordName)
    }

    /// `backend/<path>` becomes a symlink to `<app>/shared/<path>`, replacing whatever the source had there.
    private func linkShared(_ path: RelativePath, into backend: String, account: AppAccount?) throws {
        let target = store.layout.shared + "/" + path.value
        try store.makeShared(for: account)
        // shared/ is the app's to write: nothing in it is reached through a link it planted.
        try SafeTree.makeDirectories(path.components, under: store.layout.shared, owner: account.map { ($0.uid, $0.gid) })
        let link = backend + "/" + path.value
        let parent = String(link[..<link.lastIndex(of: "/")!])
        try FileOps.makeDirectories(parent)
        try SafeTree.remove(link)
        guard symlink(target, link) == 0 else { throw SystemError("linking shared directory", path: link) }
    }

    private func prune() async throws {
        let inUse = await supervisor?.existing(app.manifest.app)?.releasesInUse() ?? []
        let pruned = try store.applyRetention(keep: app.manifest.keep, logDirectory: BuildLog.directory(stateDir: stateDir, app: app.manifest.app),
                                                inUse: inUse)
        if !pruned.isEmpty { logger.info("pruned \(pruned.map(\.description).joined(separator: ", "))", metadata: ["stage": "prune"]) }
    }
}

/// Checks that a path the manifest names inside the built tree is a real directory reached
/// without following any symlink, so a build cannot publish something outside its tree.
enum ReleaseLayoutCheck {
    static func directory(_ path: RelativePath, in root: String, what: String) throws -> String {
        var current = root
        for component in path.components {
            current += "/" + component
            switch FileOps.lstatMode(current) {
            case S_IFDIR?: continue
            case S_IFLNK?: throw Deployment.StageFailure(stage: .build, message: "\(what) '\(path)' is a symlink after the build; Slipway publishes only real directories")
            case nil: throw Deployment.StageFailure(stage: .build, message: "\(what) '\(path)' does not exist after the build; check the build command's output directory")
            default: throw Deployment.StageFailure(stage: .build, message: "\(what) '\(path)' is not a directory after the build")
            }
        }
        return current
    }
}

extension Duration {
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}
