import Foundation
import Logging
import SlipwayCore

/// Removals are deliberate: an app no longer declared for this host keeps serving through
/// `removal_grace`, and a commit that removes most of the host's apps waits for an operator
/// (`slipway apply --allow-removals COMMIT`). The decision is `RemovalPolicy`'s; this applies it.
extension Reconciler {
    /// `state_dir/requests/allow-removals`: the commit `slipway apply --allow-removals` confirmed.
    static func allowRemovalsPath(stateDir: String) -> String { stateDir + "/requests/allow-removals" }

    /// Queues an operator's confirmation for the agent's next pass (`slipway apply --allow-removals`).
    public static func allowRemovals(of commit: String, stateDir: String) throws {
        try FileOps.makeDirectories(stateDir + "/requests", mode: 0o750)
        try FileOps.writeAtomically(Array((commit + "\n").utf8), to: allowRemovalsPath(stateDir: stateDir))
    }

    /// Whether a confirmation waits for a pass to take it.
    public static func removalConfirmationPending(stateDir: String) -> Bool {
        FileOps.exists(allowRemovalsPath(stateDir: stateDir))
    }

    func takeRemovalConfirmation(_ state: inout AgentState) {
        let path = Self.allowRemovalsPath(stateDir: config.stateDir)
        guard let bytes = FileOps.readFile(path, limit: 256) else { return }
        let commit = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        if RemovalPolicy.isCommitPrefix(commit) {
            state.allowedRemovals = commit
            logger.notice("operator allowed manifests commit \(commit) to remove apps")
        }
        unlink(path)
    }

    /// Which of `considered` this pass keeps serving although the manifests remove them.
    func removalDecision(_ considered: [AppName], set: ManifestSet, state: inout AgentState, commit: String) -> RemovalPolicy.Decision {
        var running = Set<AppName>(), removing = Set<AppName>(), since: [AppName: UTCTime] = [:]
        for app in considered {
            guard let previous = state.apps[app.value], previous.condition != .removed, previous.condition != .notOnThisHost,
                  previous.condition == .removing || ReleaseStore(layout: layout(app)).current() != nil else { continue }
            running.insert(app)
            guard isRemoved(app, in: set, previousPath: previous.manifestPath) else { continue }
            removing.insert(app)
            if let start = previous.memory.removingSince { since[app] = start }
        }
        let decision = RemovalPolicy.decide(running: running, removing: removing, since: since, commit: commit,
                                            confirmed: state.allowedRemovals, grace: config.removalGrace, now: .now)
        if decision.held != state.heldRemoval, let held = decision.held {
            logger.error("manifests commit \(commit.prefix(12)) removes \(held.removed) of this host's \(held.of) apps: not applied; confirm with 'slipway apply --allow-removals \(commit.prefix(12))', or push a commit that restores them")
        }
        state.heldRemoval = decision.held
        metrics.removalsHeld(decision.held?.removed ?? 0)
        return decision
    }

    /// The status of an app whose removal waits: everything as it was (release, workers,
    /// nginx site), with the condition and a line saying why and until when.
    func waitingRemoval(_ app: AppName, verdict: RemovalPolicy.Verdict, previous: AppStatus, held: RemovalPolicy.MassRemoval?) -> AppStatus {
        var status = previous
        status.condition = .removing
        switch verdict {
        case .waiting(let since, let until):
            status.memory.removingSince = since
            let left = Duration.milliseconds(max(0, until.millisecondsSinceEpoch - UTCTime.now.millisecondsSinceEpoch))
            status.message = "removing in \(DurationText.format(Self.roundedUp(left))): no manifest declares it for this host since "
                + "\(since.iso8601); its workers keep serving until then (removal_grace); put the manifest back to cancel"
        case .held:
            let commit = String(held?.commit.prefix(12) ?? "")
            let count = held.map { "\($0.removed) of this host's \($0.of)" } ?? "most of this host's"
            status.message = "manifests commit \(commit) removes \(count) apps: not applied until an operator confirms with "
                + "'slipway apply --allow-removals \(commit)' (or a later commit restores them); its workers keep serving"
        case .remove:
            break
        }
        return status
    }

    /// Whole minutes above a minute, whole seconds below: "removing in 10m", "in 42s".
    static func roundedUp(_ duration: Duration) -> Duration {
        let seconds = duration.components.seconds + (duration.components.attoseconds > 0 ? 1 : 0)
        return seconds >= 60 ? .seconds((seconds + 59) / 60 * 60) : .seconds(seconds)
    }

    private func isRemoved(_ app: AppName, in set: ManifestSet, previousPath: String?) -> Bool {
        if set.invalid.contains(where: { $0.app == app || ($0.app == nil && $0.path == previousPath) }) { return false }
        guard let entry = set.valid[app] else { return true }
        return !entry.manifest.runs(on: config.host)
    }
}
