/// How one run of a stage list (a deploy, or a switch back to a kept release) ended, as the
/// runner knows it: nothing is re-derived afterwards from messages or the clock.
public enum DeployResult: Sendable, Equatable {
    case succeeded
    /// A stage failed; `current` is where it was before (or was switched back).
    case failed(Stage, reason: String)
    /// A newer manifests commit was announced before the switch: not a failure, out of date.
    case superseded(by: String)
    /// The agent's shutdown stopped it at this stage: not a failure, the next start retries.
    case cancelled(at: Stage)
    /// The new release serves, but its contract step failed (retried every pass).
    case degraded(contractFailed: String)

    /// Whether `on_deploy` hooks hear of it: an interruption says nothing about the release.
    public var firesHooks: Bool {
        switch self {
        case .superseded, .cancelled: return false
        case .succeeded, .failed, .degraded: return true
        }
    }

    /// Whether the new release went live (and stays so).
    public var isLive: Bool {
        switch self {
        case .succeeded, .degraded: return true
        case .failed, .superseded, .cancelled: return false
        }
    }

    /// The stage that did not finish, if one did not.
    public var stoppedStage: Stage? {
        switch self {
        case .succeeded, .superseded: return nil
        case .failed(let stage, _): return stage
        case .cancelled(let stage): return stage
        case .degraded: return .contract
        }
    }
}
