/// When an app that runs on this host stops being declared for it, whether its workers stop
/// now, after a grace period, or only once an operator confirms. One bad commit (a deleted
/// manifests folder, a wrong `hosts:`) must not stop every app on every host in one pass.
///
/// - Every removal waits `removal_grace` from the pass that first saw it; the app keeps its
///   workers and its nginx site meanwhile, and putting the manifest back cancels it.
/// - A commit that removes more than half of this host's apps (two at least) is not applied at
///   all until `slipway apply --allow-removals COMMIT` confirms that commit, or a later commit
///   restores them; then the grace runs.
public enum RemovalPolicy {
    public enum Verdict: Sendable, Hashable {
        /// Within the grace: keep serving until `until`.
        case waiting(since: UTCTime, until: UTCTime)
        /// Part of a mass removal that no operator confirmed yet.
        case held
        /// The grace is over: stop the workers, mark the app removed.
        case remove
    }

    public struct Decision: Sendable, Equatable {
        public var verdicts: [AppName: Verdict]
        /// Set when this commit's removals are held for confirmation.
        public var held: MassRemoval?
    }

    public struct MassRemoval: Sendable, Equatable, Codable {
        public var commit: String
        public var removed: Int
        public var of: Int
    }

    /// - Parameters:
    ///   - running: the apps this host ran before this pass (declared for it, deployed here).
    ///   - removing: those of them the manifests at `commit` no longer declare for this host.
    ///   - since: when a pass first saw each app's removal (absent: this pass is the first).
    ///   - confirmed: the commit an operator allowed to remove apps (`slipway apply --allow-removals`).
    public static func decide(running: Set<AppName>, removing: Set<AppName>, since: [AppName: UTCTime],
                              commit: String, confirmed: String?, grace: Duration, now: UTCTime) -> Decision {
        let removing = removing.intersection(running)
        guard !removing.isEmpty else { return Decision(verdicts: [:], held: nil) }
        let mass = removing.count >= 2 && removing.count * 2 > running.count
        if mass && !confirms(confirmed, commit) {
            return Decision(verdicts: Dictionary(uniqueKeysWithValues: removing.map { ($0, Verdict.held) }),
                            held: MassRemoval(commit: commit, removed: removing.count, of: running.count))
        }
        var verdicts: [AppName: Verdict] = [:]
        for app in removing {
            let start = since[app] ?? now
            let graceMilliseconds = grace.components.seconds * 1000 + grace.components.attoseconds / 1_000_000_000_000_000
            let until = UTCTime(millisecondsSinceEpoch: start.millisecondsSinceEpoch + graceMilliseconds)
            verdicts[app] = now < until ? .waiting(since: start, until: until) : .remove
        }
        return Decision(verdicts: verdicts, held: nil)
    }

    /// What `--allow-removals` accepts: a commit id or a prefix of it, 7 to 40 hex digits.
    public static func isCommitPrefix(_ text: String) -> Bool {
        text.count >= 7 && text.count <= 40 && text.allSatisfy(\.isHexDigit)
    }

    /// Whether the operator's `--allow-removals` names this commit (its full id, or a prefix of 7 or more).
    public static func confirms(_ confirmed: String?, _ commit: String) -> Bool {
        guard let confirmed, confirmed.count >= 7 else { return false }
        return commit.hasPrefix(confirmed.lowercased())
    }
}
