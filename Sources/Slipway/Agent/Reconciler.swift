import Foundation
import Logging
import SlipwayCore

/// The outcome of one pass, for `--once` and the logs.
public struct PassResult: Sendable {
    /// Apps that should run here but are not where the manifests want them, with the reason.
    public var unsettled: [(app: AppName, reason: String)] = []
    /// A failure of the pass as a whole (the manifests repo could not be read at all).
    public var error: String?
    /// When a pass should run again although nothing is pushed (a removal's grace ends then).
    public var nextPassIn: Duration?

    public var converged: Bool { error == nil && unsettled.isEmpty }
}

/// One reconcile pass: read the manifests at the branch tip, observe every app on disk, plan,
/// act, record. Level-triggered: whatever the last pass or a crash left, this one converges.
///
/// `@unchecked Sendable` because passes never overlap: the agent loop awaits each one before
/// the next, and the state lock keeps every other process out.
public final class Reconciler: @unchecked Sendable {
    let config: AgentConfig
    let logger: Logger
    let mirrors: SourceMirrors
    /// Credentials and host keys for every remote this agent fetches from.
    let remoteAccess: RemoteAccess
    let stateFile: StateRecall
    let requests: OperatorRequests
    public let metrics: AgentMetrics
    /// Present in a running agent (absent for `--once` and offline CLI passes).
    let runtime: AgentRuntime?
    /// Where pass, stage and deploy events go; the running agent publishes them on its event hub.
    public var onEvent: @Sendable (AgentEvent) -> Void
    /// The allowed signers as this pass read them (once per pass, not once per app).
    private var passSigners: AllowedSigners?
    /// The manifests commit the last pass parsed, and what it held.
    var parsed: (commit: String, set: ManifestSet)?
    /// Processes left by builds of a dead agent, as this pass found them (one /proc scan a pass).
    private var strays = StaleBuilds.Census()
    /// on_deploy hooks still running: the running agent's, or this process's own.
    let hooks: HookTasks
    /// Pruned releases being deleted: the running agent's, or this process's own.
    let trash: TrashCollector
    /// Where this pass's time goes (the debug line that ends each pass).
    var timings = PassTimings()

    public init(config: AgentConfig, logger: Logger, runtime: AgentRuntime? = nil) {
        let metrics = runtime?.metrics ?? AgentMetrics()
        self.metrics = metrics
        self.runtime = runtime
        self.hooks = runtime?.hooks ?? HookTasks()
        self.trash = runtime?.trash ?? TrashCollector()
        self.onEvent = { [events = runtime?.events] event in events?.publish(event) }
        self.config = config
        self.logger = logger
        self.remoteAccess = RemoteAccess(git: config.git, stateDir: config.stateDir,
                                         onHostKeyChanged: { [metrics] endpoint in metrics.hostKeyChanged(endpoint) },
                                         onConnected: { [metrics] remote in metrics.remoteConnected(remote) },
                                         onFetched: { [metrics] remote in metrics.remoteFetched(remote) })
        self.mirrors = SourceMirrors(stateDir: config.stateDir, access: remoteAccess)
        self.stateFile = StateRecall(stateDir: config.stateDir)
        self.requests = OperatorRequests(stateDir: config.stateDir)
    }

    func layout(_ app: AppName) -> AppLayout { AppLayout(appsRoot: config.appsRoot, app: app) }

    // MARK: The pass

    public func pass() async -> PassResult {
        let result = await runPass()
        var finished = AgentEvent(.passFinished)
        finished.converged = result.converged
        finished.unsettled = result.unsettled.map { "\($0.app): \($0.reason)" }
        finished.error = result.error
        onEvent(finished)
        return result
    }

    private func runPass() async -> PassResult {
        let started = UTCTime.now
        timings = PassTimings()
        var state = timings.measure("state") { stateFile.load() }
        var result = PassResult()
        passSigners = nil
        strays = timings.measure("census") { StaleBuilds.Census.take() }
        onEvent(AgentEvent(.passStarted))
        mirrors.startPass()

        let manifests: (commit: String, set: ManifestSet)
        do {
            manifests = try timings.measure("manifests") { try readManifests(state: &state) }
        } catch {
            let message = "cannot read manifests from \(config.manifests.repo) (branch \(config.manifests.branch)): \(error)"
            logger.error("\(message)")
            result.error = message
            await applyRequests(&state, manifests: nil)
            state.lastPass = .init(startedAt: started, finishedAt: .now, converged: false, error: message)
            finish(state, converged: false)
            return result
        }
        if state.manifestsCommit != manifests.commit {
            logger.info("manifests at \(manifests.commit.prefix(12))", metadata: ["files": "\(manifests.set.valid.count + manifests.set.invalid.count)"])
        }
        state.manifestsCommit = manifests.commit
        await timings.measure("requests") { await applyRequests(&state, manifests: manifests.set) }
        for diagnostic in manifests.set.allDiagnostics {
            logger.error("\(diagnostic)")
        }

        // Issue 20: every mirror this pass fetches, fetched side by side before the apps are visited.
        timings.measure("remotes") {
            // Only sources this host may read (issue 16: git.local_roots is checked before anything is read as root).
            mirrors.prefetch(manifests.set.valid.values.filter {
                $0.manifest.runs(on: config.host) && HostPolicy.diagnostics(for: $0, config: config, resolve: FileOps.resolvedPath) == nil
            }.map(\.manifest.source))
        }
        let passStart = ContinuousClock.now
        let runtime = self.runtime
        let manifestsCommit = manifests.commit
        let supersededBy: @Sendable () -> String? = {
            runtime?.announcement(since: passStart).flatMap { $0 == manifestsCommit ? nil : $0 }
        }
        var sites: NginxSites.Plan = [:]
        let considered = appsToConsider(manifests.set, state: state)
        takeRemovalConfirmation(&state)
        let removals = removalDecision(considered, set: manifests.set, state: &state, commit: manifests.commit)
        for app in considered {
            if Task.isCancelled { break }
            if let newer = supersededBy() {
                logger.info("manifests commit \(newer.prefix(12)) announced; ending this pass early, the next one acts on it")
                result.error = "superseded by manifests commit \(newer.prefix(12))"
                break
            }
            var appLogger = logger
            appLogger[metadataKey: "app"] = "\(app)"
            if let verdict = removals.verdicts[app], verdict != .remove, let previous = state.apps[app.value] {
                // Not yet: its release, workers and nginx site stay as they are.
                let status = waitingRemoval(app, verdict: verdict, previous: previous, held: removals.held)
                if case .waiting(_, let until) = verdict {
                    let left = Duration.milliseconds(max(0, until.millisecondsSinceEpoch - UTCTime.now.millisecondsSinceEpoch) + 50)
                    result.nextPassIn = min(result.nextPassIn ?? left, left)
                }
                if previous.condition != .removing { appLogger.warning("\(status.message ?? "removal waits")") }
                state.apps[app.value] = status
                if verdict == .held { result.unsettled.append((app, status.message ?? "removal held")) }
                continue
            }
            let desired = timings.measure("resolve") { desiredState(of: app, in: manifests.set, previousPath: state.apps[app.value]?.manifestPath) }
            var status = await reconcile(app, desired: desired, previous: state.apps[app.value], manifestsCommit: manifests.commit,
                                         supersededBy: supersededBy, logger: appLogger)
            if let site = timings.measure("nginx", { nginxSite(for: app, desired: desired) }) { sites[app] = site }
            let store = ReleaseStore(layout: layout(app))
            timings.measure("record") {
                status.current = store.current()
                metrics.currentRelease(app: app, release: status.current, sha: status.current.flatMap { store.record($0)?.source.sha })
            }
            let previous = state.apps[app.value]
            state.apps[app.value] = status
            if !status.isSettled {
                result.unsettled.append((app, status.message ?? status.condition.rawValue))
            }
            // What a deploy (or its failure) changed is on disk before the next app starts, so a
            // kill -9 loses nothing; every other change is written once, at the end of the pass
            // (a write per app made passes quadratic: 185 s for 5,000 new manifests).
            if status.lastDeploy != previous?.lastDeploy || status.memory != (previous?.memory ?? AppMemory()) {
                timings.measure("save") { save(state) }
            }
        }
        await timings.measure("nginx") { await applyNginx(sites, known: Set(considered), state: &state, result: &result) }
        state.lastPass = .init(startedAt: started, finishedAt: .now, converged: result.converged, error: result.error)
        timings.measure("save") { finish(state, converged: result.converged) }
        let syncs = mirrors.syncTimes.values.reduce(Duration.zero, +)
        timings.note("mirror syncs \(PassTimings.ms(syncs)) ms over \(mirrors.syncTimes.count) remote(s)")
        logger.debug("\(timings.summary)")
        return result
    }

    private func finish(_ state: AgentState, converged: Bool) {
        save(state)
        metrics.passFinished(converged: converged)
        do {
            try metrics.write(stateDir: config.stateDir)
        } catch {
            logger.warning("cannot write metrics: \(error)")
        }
    }

    func save(_ state: AgentState) {
        do {
            try stateFile.save(state)
        } catch {
            logger.error("cannot write state: \(error)")
        }
    }

    private var trustGate: TrustGate? {
        config.manifests.verify.map { TrustGate(verification: $0, stateDir: config.stateDir, logger: logger) }
    }

    private func readManifests(state: inout AgentState) throws -> (commit: String, set: ManifestSet) {
        let repo = try GitRepository.openMirror(at: config.stateDir + "/mirrors/manifests.git")
        let branchRef = "refs/heads/\(config.manifests.branch)"
        do {
            try repo.sync(from: config.manifests.repo, refspecs: ["+\(branchRef):\(branchRef)"], access: remoteAccess)
            state.manifestsFetchError = nil
        } catch {
            // Keep reconciling against the last fetched commit: the apps keep their state.
            state.manifestsFetchError = error.description
            guard try repo.referenceTarget(branchRef) != nil else { throw error }
            logger.warning("fetching manifests failed, using the last fetched commit: \(error)")
        }
        guard let tip = try repo.referenceTarget(branchRef) else {
            throw GitError(operation: "reading \(branchRef)", message: "the branch does not exist", code: -3)
        }
        runtime?.saw(tip: tip)
        var commit = tip
        if let gate = trustGate {
            var trust = state.trust ?? TrustStatus(verified: true)
            trust.verified = true
            let previousRefusal = trust.refused
            defer {
                state.trust = trust
                metrics.manifestsRefused(trust.refused, isNew: trust.refused != nil
                    && (trust.refused?.commit != previousRefusal?.commit || trust.refused?.reason != previousRefusal?.reason))
            }
            let signers = try gate.allowedSigners()
            passSigners = signers
            commit = try gate.commitToUse(tip: tip, repo: repo, signers: signers, status: &trust)
        } else {
            state.trust = nil
        }
        // The same commit means the same manifests: a running agent parses each commit once.
        if let parsed, parsed.commit == commit { return parsed }
        let folder = config.manifests.path.value
        let files = try repo.files(atCommit: commit, under: folder, matching: ManifestSet.isManifestPath)
        let set = ManifestSet(files: files.map { file in
            ManifestSet.File(path: file.path, text: file.bytes.map { String(decoding: $0, as: UTF8.self) } ?? "",
                             tooLarge: file.bytes == nil ? file.size : nil)
        })
        parsed = (commit, set)
        return (commit, set)
    }

    /// Every app declared, plus every app with files or state here (so removals are noticed).
    private func appsToConsider(_ set: ManifestSet, state: AgentState) -> [AppName] {
        var names = Set(set.valid.keys)
        names.formUnion(set.invalid.compactMap(\.app))
        names.formUnion(state.apps.keys.compactMap(AppName.init))
        for name in (try? FileManager.default.contentsOfDirectory(atPath: config.appsRoot)) ?? [] {
            if let app = AppName(name), FileOps.isDirectory(config.appsRoot + "/" + name) { names.insert(app) }
        }
        return names.sorted()
    }

    /// `previousPath` is the file that declared the app last time: an invalid file there whose
    /// app name cannot be read still belongs to it (it is not "removed").
    private func desiredState(of app: AppName, in set: ManifestSet, previousPath: String?) -> DesiredApp {
        if let invalid = set.invalid.first(where: { $0.app == app || ($0.app == nil && $0.path == previousPath) }) {
            return .invalid(invalid.diagnostics)
        }
        guard let entry = set.valid[app] else { return .removed }
        guard entry.manifest.runs(on: config.host) else { return .notOnThisHost }
        // Issue 16: before anything is read as root (git.local_roots, privileged ports).
        if let refused = HostPolicy.diagnostics(for: entry, config: config, resolve: FileOps.resolvedPath) { return .invalid(refused) }
        switch mirrors.resolve(entry.manifest.source) {
        case .success(let sha):
            if let gate = trustGate, gate.verification.sources {
                guard let signers = passSigners, let repo = try? mirrors.open(entry.manifest.source.repo) else {
                    return .untrusted("source commit \(sha.prefix(12)) could not be verified: no allowed signers were read this pass")
                }
                if let problem = gate.sourceProblem(sha: sha, repo: repo, signers: signers) { return .untrusted(problem) }
            }
            return .resolved(ResolvedApp(manifest: entry.manifest, manifestPath: entry.path, sourceSHA: sha,
                                         migrationRole: entry.manifest.migrate?.role(on: config.host) ?? .none))
        case .failure(let problem):
            return .unresolved(problem.description)
        }
    }

    // MARK: One app

    private func reconcile(_ app: AppName, desired: DesiredApp, previous: AppStatus?, manifestsCommit: String,
                           supersededBy: @escaping @Sendable () -> String?, logger: Logger) async -> AppStatus {
        let store = ReleaseStore(layout: layout(app))
        var memory = previous?.memory ?? AppMemory()
        // Declared again (a removal cancelled), or removed for good now: a later removal starts a new grace.
        memory.removingSince = nil
        var status = previous ?? AppStatus(condition: .converged)
        status.message = nil
        if case .resolved(let resolved) = desired {
            status.manifestPath = resolved.manifestPath
            status.declaredRef = resolved.manifest.source.ref.description
            status.declaredSHA = resolved.sourceSHA
            status.desiredFingerprint = resolved.spec.fingerprint
        }
        // The pruned releases of this app's last deploy may still be going (TrashCollector).
        await trash.idle(store)
        do {
            try timings.measure("cleanup") { try store.cleanUpInterrupted(census: strays) }
        } catch {
            logger.warning("cleaning up an interrupted deploy: \(error)")
        }

        let plan = Planner.plan(desired: desired, observed: timings.measure("observe") { store.observe(memory: memory) })
        if plan.clearsPin, let pin = memory.pin {
            logger.info("pin on \(pin.release) released: the desired state changed")
            memory.pin = nil
        }
        if plan.consumesRetry { memory.retryRequested = false }

        var pendingContract: ReleaseID?
        /// Set when a run's reload stage just rolled the workers: the pass does not roll them again.
        var workersRolled = false
        switch plan.action {
        case .upToDate:
            status.condition = .converged
            await timings.measure("prune") { await prune(store, desired: desired, logger: logger) }
        case .contract(let id):
            // Run once the workers are known healthy (below).
            status.condition = .converged
            pendingContract = id
        case .keepPinned(let id, let move, let learned):
            if let learned { memory.pin?.desiredFingerprint = learned }
            status.condition = .pinned
            status.message = memory.pin.map { "pinned to \($0.release): \($0.reason); released when the manifest changes" }
            if move {
                logger.info("current left pinned release \(id): switching back to it")
                workersRolled = await switchToKept(id, manifest: desired.manifest, store: store, status: &status, memory: &memory, logger: logger)
            }
        case .switchTo(let id):
            workersRolled = await switchToKept(id, manifest: desired.manifest, store: store, status: &status, memory: &memory, logger: logger)
            if store.current() == id { logger.info("switched to kept release \(id), which already realises the manifest", metadata: ["stage": "switch"]) }
            await prune(store, desired: desired, logger: logger)
        case .deploy(let resolved):
            logger.info("deploying \(resolved.manifest.source.ref) (\(resolved.sourceSHA.prefix(7)))")
            let (outcome, result) = await timings.measure("deploy") {
                await Deployment(app: resolved, store: store, agent: deployAgent(logger), manifestsCommit: manifestsCommit,
                                 supersededBy: supersededBy, onEvent: onEvent).run()
            }
            finished(app, outcome, result: result, status: &status)
            let verdict = OutcomeRules.afterDeploy(result, fingerprint: resolved.spec.fingerprint, release: outcome.release, memory: memory, at: .now)
            (status.condition, status.message, memory) = (verdict.condition, verdict.message, verdict.memory)
            let current = store.current().map(\.description) ?? "unset"
            switch result {
            case .succeeded: logger.info("deployed \(outcome.release.map(\.description) ?? "")")
            case .degraded: logger.error("deployed \(outcome.release.map(\.description) ?? ""), but its contract step failed; retried on the next pass")
            case .superseded(let newer): logger.info("deploy superseded by manifests commit \(newer.prefix(12)); current stays \(current)")
            case .cancelled: logger.warning("deploy interrupted by shutdown; current stays \(current)")
            case .failed: break
            }
            workersRolled = result.isLive && outcome.stages.contains { $0.stage == .reload }
        case .holdFailed(let failure):
            status.condition = .failed
            status.message = "\(failure.stage) failed at \(failure.at.iso8601): \(failure.error)\n"
                + "not retried until the manifest or source changes; 'slipway deploy \(app)' tries once more"
        case .keepCurrent(let reason):
            switch desired {
            case .invalid: status.condition = .invalid
            case .untrusted: status.condition = .untrusted
            default: status.condition = .unresolved
            }
            status.message = reason
            logger.error("keeping the current release: \(reason)")
        case .retire(let reason):
            if case .notOnThisHost = desired { status.condition = .notOnThisHost } else {
                if status.condition != .removed { logger.info("marked removed (\(reason)); its files are kept") }
                status.condition = .removed
            }
            status.message = reason
        }
        if workersRolled {
            // The run's reload just replaced every worker: a requested reload is done, and a
            // generation that failed before is behind us.
            memory.reloadRequested = nil
            memory.workerFailure = nil
        } else if let supervisor = runtime?.supervisor {
            await timings.measure("supervise") {
                await superviseWorkers(app, desired: desired, supervisor: supervisor, status: &status, memory: &memory, logger: logger)
            }
        }
        if let pendingContract, case .resolved(let resolved) = desired, status.condition == .converged {
            await contract(resolved, release: pendingContract, status: &status, logger: logger)
        }
        status.memory = memory
        return status
    }

    /// The retention check of a pass with nothing to deploy: the prune stage's work, unreported.
    private func prune(_ store: ReleaseStore, desired: DesiredApp, logger: Logger) async {
        guard case .resolved(let app) = desired else { return }
        do {
            try await Pruning(store: store, stateDir: config.stateDir, supervisor: runtime?.supervisor, trash: trash,
                              logger: logger).run(keep: app.manifest.keep)
        } catch {
            logger.error("pruning failed: \(error)", metadata: ["stage": "prune"])
        }
    }

    /// What the stages of a deploy or rollback use of this agent.
    func deployAgent(_ logger: Logger) -> DeployContext.Agent {
        DeployContext.Agent(config: config, mirrors: mirrors, logger: logger, supervisor: runtime?.supervisor, trash: trash)
    }

    /// A deploy or rollback ended: its event, `status`'s last deploy, metrics, and the `on_deploy`
    /// hooks (not for a run cut short by a newer push or the agent's shutdown).
    func finished(_ app: AppName, _ outcome: DeployOutcome, result: DeployResult, status: inout AppStatus) {
        var event = AgentEvent(.deploy, app: app.value, state: outcome.result.rawValue)
        event.release = outcome.release?.description
        event.error = outcome.error
        event.action = outcome.kind?.rawValue
        onEvent(event)
        status.lastDeploy = outcome
        metrics.deployFinished(app: app, outcome: outcome)
        if result.firesHooks {
            hooks.add(DeployHooks(config: config, metrics: metrics, logger: logger)
                .fire(DeployHooks.facts(app: app, host: config.host, outcome: outcome)))
        }
    }

    /// Runs `Rollback` to the kept release `id`; says whether its reload rolled the workers.
    func switchToKept(_ id: ReleaseID, manifest: Manifest?, store: ReleaseStore, status: inout AppStatus,
                      memory: inout AppMemory, logger: Logger) async -> Bool {
        let app = store.layout.app
        let ran = await Rollback(app: app, manifest: manifest, store: store, agent: deployAgent(logger), target: id, onEvent: onEvent).run()
        finished(app, ran.outcome, result: ran.result, status: &status)
        let verdict = OutcomeRules.afterRollback(ran.result, to: id, generation: ran.generation, memory: memory)
        (status.condition, status.message, memory) = (verdict.condition, verdict.message, verdict.memory)
        if case .failed(let stage, let reason) = ran.result {
            logger.error("switching to \(id) failed at \(stage): \(reason)", metadata: ["stage": "\(stage)"])
        }
        return ran.result.isLive && ran.outcome.stages.contains { $0.stage == .reload }
    }

    /// Stops on_deploy hooks still running (their commands get SIGTERM, then SIGKILL): before a re-exec.
    public func stopHooks() async {
        await hooks.stopAll()
        try? metrics.write(stateDir: config.stateDir)
    }

    /// Waits for on_deploy hooks still running (each is bounded by its timeout) and for the
    /// pruned releases still being deleted.
    public func waitForHooks() async {
        await trash.waitForAll()
        // Their outcomes are metrics: written again only when hooks were fired.
        if await hooks.waitForAll() { try? metrics.write(stateDir: config.stateDir) }
    }
}
