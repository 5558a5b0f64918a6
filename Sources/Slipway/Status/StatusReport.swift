import Foundation
import SlipwayCore

/// What `slipway status` shows, built from the state file and the disk: declared vs running
/// per app, what happened last, what is wrong. The same value renders as text and as JSON.
public struct StatusReport: Sendable, Codable {
    public var host: String
    public var manifests: Manifests
    public var agentPID: Int32?
    /// "stopping" while a running agent drains its workers after SIGTERM; nil otherwise.
    public var agentState: String?
    public var lastPass: AgentState.PassSummary?
    /// Nil when manifests commits are not verified.
    public var trust: TrustStatus?
    /// A manifests commit whose removals wait for `slipway apply --allow-removals`.
    public var heldRemoval: RemovalPolicy.MassRemoval?
    public var apps: [App]
    /// How the agent keeps builds and workers from leaving processes behind (issue 16): a cgroup
    /// v2 or process groups only; nil before a root agent ran here.
    public var containment: String?
    /// The running agent's version, when its image started and its re-execs (issue 19); nil
    /// when no agent runs.
    public var agent: AgentImage?

    public struct Manifests: Sendable, Codable {
        public var repo: String
        public var branch: String
        public var commit: String?
        /// The last fetch failed: which remote and why, in one line (the last fetched commit is used).
        public var fetchError: String?
    }

    public struct App: Sendable, Codable {
        public var app: String
        public var condition: AppStatus.Condition
        public var message: String?
        public var manifest: String?
        public var declaredRef: String?
        public var declaredSHA: String?
        public var current: ReleaseID?
        public var currentSHA: String?
        public var releasesKept: Int
        public var pin: AppMemory.Pin?
        public var lastDeploy: DeployOutcome?
        /// The app's workers, as the supervisor last wrote them; nil when it runs none.
        public var workers: WorkerTable?
    }

    public static func build(config: AgentConfig) -> StatusReport {
        let state = StateFile(stateDir: config.stateDir).load()
        var names = Set(state.apps.keys)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: config.appsRoot)) ?? [] where AppName(name) != nil {
            names.insert(name)
        }
        let apps = names.sorted().compactMap { name -> App? in
            guard let app = AppName(name) else { return nil }
            let store = ReleaseStore(layout: AppLayout(appsRoot: config.appsRoot, app: app))
            let status = state.apps[name]
            let current = store.current()
            let workers = WorkerTable.load(stateDir: config.stateDir, app: name)
            var condition = status?.condition ?? .removed
            var message = status?.message
            if let degraded = workers?.degraded, condition == .converged || condition == .pinned {
                condition = .degraded
                message = degraded
            }
            return App(app: name, condition: condition, message: message,
                       manifest: status?.manifestPath, declaredRef: status?.declaredRef, declaredSHA: status?.declaredSHA,
                       current: current, currentSHA: current.flatMap { store.record($0)?.source.sha },
                       releasesKept: store.releaseIDs().count, pin: status?.memory.pin, lastDeploy: status?.lastDeploy,
                       workers: workers.flatMap { $0.workers.isEmpty && $0.degraded == nil ? nil : $0 })
        }
        let pid = AgentLock.holder(stateDir: config.stateDir)
        let image = AgentImage.load(stateDir: config.stateDir).flatMap { $0.pid == pid ? $0 : nil }
        return StatusReport(host: config.host,
                            manifests: .init(repo: config.manifests.repo, branch: config.manifests.branch, commit: state.manifestsCommit,
                                            fetchError: state.manifestsFetchError),
                            agentPID: pid, lastPass: state.lastPass,
                            trust: config.manifests.verify == nil ? nil : state.trust, heldRemoval: state.heldRemoval, apps: apps,
                            containment: Containment.recorded(stateDir: config.stateDir), agent: image)
    }

    public func json() throws -> String {
        String(decoding: try JSONFiles.encode(self), as: UTF8.self)
    }

    /// A table an operator takes in at a glance, with what went wrong under each app.
    public func text(now: UTCTime) -> String {
        var lines: [String] = []
        let commit = manifests.commit.map { String($0.prefix(12)) } ?? "not fetched yet"
        let agent = agentPID.map { agentState == "stopping" ? "agent stopping, draining workers (pid \($0))" : "agent running (pid \($0))" }
            ?? "agent not running"
        var pass = "no pass yet"
        if let lastPass {
            pass = "last pass \(Self.ago(lastPass.finishedAt, now: now)), " + (lastPass.converged ? "converged" : "not converged")
            if let error = lastPass.error { pass += ": \(error)" }
        }
        lines.append("host \(host) · manifests \(manifests.branch) @ \(commit) · \(agent) · \(pass)")
        if let image = self.agent { lines.append(image.summary) }
        if let fetchError = manifests.fetchError {
            lines.append("! manifests not fetched, using \(commit): \(fetchError)")
        }
        if let trust {
            let last = trust.lastVerifiedCommit.map { "last verified \($0.prefix(12))" + (trust.lastVerifiedSigner.map { " by \($0)" } ?? "") } ?? "nothing verified yet"
            lines.append("signed commits required: \(last)")
            if let refused = trust.refused {
                lines.append("! refused manifests commit \(refused.commit.prefix(12)) (\(refused.reason)): \(refused.message)")
            }
        } else {
            lines.append("manifests commits are not verified (no manifests.verify in the agent config)")
        }
        if let held = heldRemoval {
            lines.append("! manifests commit \(held.commit.prefix(12)) removes \(held.removed) of this host's \(held.of) apps: not applied; "
                         + "they keep serving until 'slipway apply --allow-removals \(held.commit.prefix(12))' (or a commit that restores them)")
        }
        if let containment { lines.append("builds and workers contained by \(containment)") }
        lines.append("")
        guard !apps.isEmpty else {
            lines.append("no apps yet")
            return TerminalText.escaped(lines.joined(separator: "\n"), keepNewlines: true)
        }
        var rows = [["APP", "STATE", "DECLARED", "CURRENT", "RELEASES"]]
        for app in apps {
            let declared = app.declaredRef.map { ref in
                let sha = app.declaredSHA.map { String($0.prefix(7)) } ?? "?"
                return ref == app.declaredSHA ? sha : "\(ref) → \(sha)"
            } ?? "-"
            rows.append([app.app, app.condition.rawValue, declared, app.current?.description ?? "-", "\(app.releasesKept)"])
        }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max()! }
        for (index, row) in rows.enumerated() {
            lines.append(row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces))
            guard index > 0 else { continue }
            let app = apps[index - 1]
            if let deploy = app.lastDeploy {
                let stages = deploy.stages.map { "\($0.stage) \(DurationText.format(.milliseconds($0.milliseconds)))" }.joined(separator: " · ")
                let what = deploy.release?.description ?? String(deploy.sha.prefix(7))
                lines.append("  last \(deploy.kind == .rollback ? "rollback to" : "deploy") \(what) \(deploy.result.rawValue) \(Self.ago(deploy.finishedAt, now: now))" + (stages.isEmpty ? "" : ": \(stages)"))
            }
            if let workers = app.workers { lines += Self.workerLines(workers, now: now) }
            if let message = app.message {
                let marker = app.condition == .converged || app.condition == .pinned ? "  " : "  ! "
                for line in message.split(separator: "\n", omittingEmptySubsequences: false).prefix(20) {
                    lines.append(marker + line)
                }
            }
        }
        // Messages and worker STATUS= texts come from apps: no escape sequence reaches the terminal.
        return TerminalText.escaped(lines.joined(separator: "\n"), keepNewlines: true)
    }

    /// Per worker: slot, pid, release, state, uptime, restarts, RSS, its last health check on
    /// its own socket and when (and its own STATUS=).
    static func workerLines(_ table: WorkerTable, now: UTCTime) -> [String] {
        var lines = ["  workers" + (table.listen.map { " on \($0)" } ?? "") + (table.generation.map { " · generation \($0)" } ?? "")]
        var rows = [["SLOT", "PID", "RELEASE", "STATE", "UP", "RESTARTS", "RSS", "HEALTH"]]
        for worker in table.workers {
            let up = worker.state == .backoff ? "-" : String(ago(worker.startedAt, now: now).dropLast(4))
            let health = worker.health.map { ($0.passed ? "ok " : "failed ") + ago($0.at, now: now) + ($0.passed ? "" : ": \($0.detail)") } ?? "-"
            rows.append(["\(worker.slot)", "\(worker.pid)", worker.release.description, worker.state.rawValue, up,
                         "\(worker.restarts)", worker.rssBytes.map(ByteSize.format) ?? "-", health])
        }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max()! }
        for (index, row) in rows.enumerated() {
            var line = "    " + row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
            if index > 0, let status = table.workers[index - 1].status { line += "  \"\(status)\"" }
            lines.append(line)
        }
        return lines
    }

    static func ago(_ time: UTCTime, now: UTCTime) -> String {
        let seconds = max(0, (now.millisecondsSinceEpoch - time.millisecondsSinceEpoch) / 1000)
        switch seconds {
        case ..<60: return "\(seconds)s ago"
        case ..<3600: return "\(seconds / 60)m ago"
        case ..<86_400: return "\(seconds / 3600)h ago"
        default: return "\(seconds / 86_400)d ago"
        }
    }
}
