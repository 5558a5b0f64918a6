/// What to do about one app this pass.
public enum AppAction: Sendable, Equatable {
    /// `current` already realises the desired state.
    case upToDate
    /// An operator pinned a release; `switchTo` is set when `current` must move back to it.
    case keepPinned(ReleaseID, switchTo: Bool, learnedFingerprint: String?)
    /// A kept release already realises the desired state: switch to it, no build.
    case switchTo(ReleaseID)
    /// `current` realises the desired state, but its contract step has not run (it failed on
    /// an earlier pass): run it once the workers are healthy.
    case contract(ReleaseID)
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

        if let current = observed.current, let release = observed.release(current), release.fingerprint == fingerprint {
            if app.migrationRole.contracts(app.manifest.migrate), !release.contracted {
                return AppPlan(action: .contract(current), clearsPin: clearsPin, consumesRetry: false)
            }
            return AppPlan(action: .upToDate, clearsPin: clearsPin, consumesRetry: false)
        }
        // With a step before the switch, a kept release is not switched to behind its back: the
        // deploy builds anew so its expand (or check) runs against today's schema.
        if !app.migrationRole.gatesSwitch(app.manifest.migrate),
           let existing = observed.releases.filter({ $0.fingerprint == fingerprint && $0.succeeded }).map(\.id).max() {
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
        /// The target is older than a release whose contract step ran.
        case pastContract(ReleaseID, contracted: ReleaseID)

        public var description: String {
            switch self {
            case .noCurrent: return "the app has no current release to roll back from"
            case .noOlderRelease: return "there is no older good release to roll back to; see 'slipway releases APP'"
            case .unknown(let id): return "no release '\(id)' is kept; see 'slipway releases APP' for the ids"
            case .alreadyCurrent(let id): return "release \(id) is already current"
            case .pastContract(let id, let contracted):
                return "release \(id) is older than \(contracted), whose contract step changed the schema (it may have dropped "
                    + "what \(id) still reads); deploy a fix forward, or add --force if you know \(id) works with today's schema"
            }
        }
    }

    /// `force` allows going back past a contract step (see `Problem.pastContract`).
    public static func choose(_ observed: ObservedApp, requested: String?, force: Bool = false) -> Result<ReleaseID, Problem> {
        guard let current = observed.current else { return .failure(.noCurrent) }
        let target: ReleaseID
        if let requested {
            guard let id = ReleaseID(requested), let release = observed.release(id), release.succeeded else {
                return .failure(.unknown(requested))
            }
            guard id != current else { return .failure(.alreadyCurrent(id)) }
            target = id
        } else {
            guard let previous = Retention.previousGood(observed.releases, current: current) else { return .failure(.noOlderRelease) }
            target = previous
        }
        if !force, let contracted = observed.lastContracted, target < contracted {
            return .failure(.pastContract(target, contracted: contracted))
        }
        return .success(target)
    }
}
