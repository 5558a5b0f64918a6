/// Where an app stands after a pass, in the words `slipway status` uses.
public enum AppCondition: String, Sendable, Codable {
    case converged, pinned, failed, invalid, unresolved, untrusted, removed, interrupted
    /// No longer declared for this host, still serving: within `removal_grace`, or part of
    /// a mass removal waiting for `slipway apply --allow-removals`.
    case removing
    /// Deployed, but unhealthy: its workers are crash-looping (shown by `status` from the worker
    /// table), or its contract step failed (retried every pass).
    case degraded
    case notOnThisHost = "not-on-this-host"

    /// Whether the app is where the manifests want it (or where an operator pinned it).
    public var isSettled: Bool {
        switch self {
        case .converged, .pinned, .removed, .notOnThisHost, .removing: return true
        case .failed, .invalid, .unresolved, .untrusted, .interrupted, .degraded: return false
        }
    }
}
