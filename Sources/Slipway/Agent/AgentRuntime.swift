import Foundation
import Logging
import SlipwayCore

/// What the agent's services share: the wake-up channel that starts a pass, the metrics, and the
/// newest commit a push notification announced (so a deploy in flight can see it is superseded).
public final class AgentRuntime: Sendable {
    public let config: AgentConfig
    public let metrics: AgentMetrics
    public let events = EventHub()
    /// The app workers this agent runs; they live as long as the agent, not a pass.
    public let supervisor: Supervisor
    /// `on_deploy` hooks still running; the hook service stops them on shutdown.
    public let hooks = HookTasks()
    /// Pruned releases being deleted after the passes that pruned them.
    public let trash = TrashCollector()
    let wakeups: AsyncStream<Void>
    private let wakeContinuation: AsyncStream<Void>.Continuation
    private let announced = Mutex<Announcement?>(nil)
    private let seenTip = Mutex<String?>(nil)
    private let stoppingFlag = Mutex(false)
    /// Which image runs and how many re-execs it took to get here (issue 19).
    let image: Mutex<AgentImage>
    /// Held while `agent.json` is written (`saveImage`).
    let imageSaves = Mutex(())
    /// Set by SIGUSR2: re-exec once the pass in progress (cancelled) is over.
    let reexecRequest = Mutex<ReexecRequest?>(nil)
    /// This image took its workers over from a previous one (it says READY=1 at once).
    let tookOver = Mutex(false)
    /// What a previous image handed this one, until the agent loop takes the workers over.
    let handover = Mutex<PendingHandover?>(nil)
    /// The pass in progress, so SIGUSR2 can cancel it.
    let currentPass = Mutex<Task<PassResult, Never>?>(nil)

    /// True once graceful shutdown began: passes are over and workers are draining; the API
    /// still answers (it stops last) and says so.
    public var isStopping: Bool { stoppingFlag.withLock { $0 } }

    func beginStopping() {
        stoppingFlag.withLock { $0 = true }
    }

    struct Announcement: Sendable {
        var commit: String
        var at: ContinuousClock.Instant
    }

    public init(config: AgentConfig, metrics: AgentMetrics = AgentMetrics(), image: AgentImage = AgentImage(version: "unknown")) {
        self.config = config
        self.metrics = metrics
        self.image = Mutex(image)
        self.supervisor = Supervisor(config: config, logger: Logger(label: "slipway.supervisor"), metrics: metrics)
        // Wake-ups coalesce: however many arrive during a pass, one more pass follows.
        (wakeups, wakeContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        // Issue 16: `slipway status` says how this host contains builds and workers.
        Containment.record(stateDir: config.stateDir)
    }

    /// Cleans up what agents killed with `kill -9` left: in this host's cgroups, their build and
    /// migrate steps and their empty groups (`Containment.sweepLeftovers`); in the state
    /// directory's mirrors, the lock files of a fetch they were in (`StaleGitLocks`). Called at
    /// an agent's start, once it holds its lock.
    public static func sweepLeftovers(stateDir: String, logger: Logger) {
        Containment.sweepLeftovers(logger: logger)
        let locks = StaleGitLocks.remove(mirrors: stateDir + "/mirrors")
        if !locks.isEmpty {
            logger.info("removed the lock files a killed agent left in its git mirrors", metadata: ["count": "\(locks.count)", "first": "\(locks[0])"])
        }
    }

    /// Asks for a pass as soon as the current one (if any) ends.
    public func wake() {
        wakeContinuation.yield()
    }

    /// A push announced `commit` as the branch's new tip. Returns false when a pass has already
    /// read that tip: the notification is redundant, and a burst of them costs no extra passes.
    @discardableResult
    func announce(commit: String) -> Bool {
        announced.withLock { $0 = Announcement(commit: commit, at: .now) }
        if seenTip.withLock({ $0 == commit }) { return false }
        wake()
        return true
    }

    /// A pass fetched the manifests branch and found `tip`.
    func saw(tip: String) {
        seenTip.withLock { $0 = tip }
    }

    /// The commit announced since `instant`, if any.
    func announcement(since instant: ContinuousClock.Instant) -> String? {
        announced.withLock { value in
            guard let value, value.at >= instant else { return nil }
            return value.commit
        }
    }
}

/// A small lock-protected box (Synchronization's Mutex needs macOS 15; this works everywhere).
final class Mutex<Value: Sendable>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()

    init(_ value: Value) {
        self.value = value
    }

    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
