/// What to do about one app this pass.
public enum AppAction: Sendable, Equatable {
    /// `current` already realises the desired state.
    case upToDate
    /// An operator pinned a release; `switchTo` is set when `current` must move back to it.
    case keepPinned(ReleaseID, switchTo: Bool, learnedFingerprint: String?)
    /// A kept release already realises the desired state: switch to it, no build.
    case switchTo(ReleaseID)
    /// Fetch, build and switch to a new release.
    case deploy(ResolvedApp)
    /// This exact desired state failed before: wait for a change or an operator's retry.
    case holdFailed(AppMemory.Failure)
    /// Nothing can be deployed (invalid manifest, unreachable source): keep what runs.
    case keepCurrent(reason: String)
    /// The app is no longer declared (or not for this host): leave its files alone.
    case retire(reason: String)
}

/// A decision with the bookkeeping that goes with it.
public struct AppPlan: Sendable, Equatable {
    public var action: AppAction
    /// Whether the pin is released by this pass (the desired state moved on).
    public var clearsPin: Bool
    /// Whether this pass consumes an operator's retry request.
    public var consumesRetry: Bool
}

/// The controller's heart: desired + observed → an action. Pure and deterministic, so every
/// branch is tested without a disk, a repo or a clock.
public enum Planner {
    public static func plan(desired: DesiredApp, observed: ObservedApp) -> AppPlan {
        let memory = observed.memory
        switch desired {
        case .invalid(let diagnostics):
            let first = diagnostics.items.first.map(\.description) ?? "invalid manifest"
            return AppPlan(action: .keepCurrent(reason: first), clearsPin: false, consumesRetry: false)
        case .unresolved(let reason), .untrusted(let reason):
            return AppPlan(action: .keepCurrent(reason: reason), clearsPin: false, consumesRetry: false)
        case .notOnThisHost:
            return AppPlan(action: .retire(reason: "not scheduled on this host"), clearsPin: false, consumesRetry: false)
        case .removed:
            return AppPlan(action: .retire(reason: "no manifest declares this app"), clearsPin: false, consumesRetry: false)
        case .resolved(let app):
            return plan(app, observed: observed, memory: memory)
        }
    }

    static func plan(_ app: ResolvedApp, observed: ObservedApp, memory: AppMemory) -> AppPlan {
        let fingerprint = app.spec.fingerprint
        var clearsPin = false

        if let pin = memory.pin {
            let stillDesired = pin.desiredFingerprint == nil || pin.desiredFingerprint == fingerprint
            if stillDesired, observed.release(pin.release) != nil {
                let learned = pin.desiredFingerprint == nil ? fingerprint : nil
                return AppPlan(action: .keepPinned(pin.release, switchTo: observed.current != pin.release, learnedFingerprint: learned),
                               clearsPin: false, consumesRetry: false)
            }
            clearsPin = true
        }

        if let current = observed.current, observed.release(current)?.fingerprint == fingerprint {
            return AppPlan(action: .upToDate, clearsPin: clearsPin, consumesRetry: false)
        }
        if let existing = observed.releases.filter({ $0.fingerprint == fingerprint && $0.succeeded }).map(\.id).max() {
            return AppPlan(action: .switchTo(existing), clearsPin: clearsPin, consumesRetry: false)
        }
        if let failure = memory.failure, failure.fingerprint == fingerprint, !memory.retryRequested {
            return AppPlan(action: .holdFailed(failure), clearsPin: clearsPin, consumesRetry: false)
        }
        return AppPlan(action: .deploy(app), clearsPin: clearsPin, consumesRetry: memory.retryRequested)
    }
}

/// Where a rollback goes: the given release, or the newest good one older than `current`.
public enum RollbackTarget {
    public enum Problem: Error, Sendable, Equatable, CustomStringConvertible {
        case noCurrent
        case noOlderRelease
        case unknown(String)
        case alreadyCurrent(ReleaseID)

        public var description: String {
            switch self {
            case .noCurrent: return "the app has no current release to roll back from"
            case .noOlderRelease: return "there is no older good release to roll back to; see 'slipway releases APP'"
            case .unknown(let id): return "no release '\(id)' is kept; see 'slipway releases APP' for the ids"
            case .alreadyCurrent(let id): return "release \(id) is already current"
            }
        }
    }

    public static func choose(_ observed: ObservedApp, requested: String?) -> Result<ReleaseID, Problem> {
        guard let current = observed.current else { return .failure(.noCurrent) }
        if let requested {
            guard let id = ReleaseID(requested), let release = observed.release(id), release.succeeded else {
                return .failure(.unknown(requested))
            }
            return id == current ? .failure(.alreadyCurrent(id)) : .success(id)
        }
        guard let previous = Retention.previousGood(observed.releases, current: current) else { return .failure(.noOlderRelease) }
        return .success(previous)
    }
}
