/// How long to wait before restarting a crashed worker: `backoff` doubled per crash in a row,
/// capped at `max_backoff`. A worker that stayed up for `min_uptime` resets the count.
public struct RestartBackoff: Sendable, Equatable {
    public var policy: Workers.Restart
    /// Crashes in a row without a worker reaching `min_uptime`.
    public private(set) var crashesInARow = 0

    /// After this many crashes in a row the app is reported degraded (still restarted, slowly).
    public static let degradedAfter = 3

    public init(policy: Workers.Restart) {
        self.policy = policy
    }

    /// Records a crash of a worker that had been up for `uptime`; returns the delay before the restart.
    public mutating func crashed(after uptime: Duration) -> Duration {
        if uptime >= policy.minUptime { crashesInARow = 0 }
        crashesInARow += 1
        var delay = policy.backoff
        for _ in 1..<crashesInARow {
            delay = delay * 2
            if delay >= policy.maxBackoff { return policy.maxBackoff }
        }
        return min(delay, policy.maxBackoff)
    }

    /// A worker reached `min_uptime`: the crash loop (if any) is over.
    public mutating func stayedUp() {
        crashesInARow = 0
    }

    public var isCrashLooping: Bool { crashesInARow >= Self.degradedAfter }
}
