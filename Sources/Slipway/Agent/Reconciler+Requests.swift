import Foundation
import Logging
import SlipwayCore

/// Acting on `slipway deploy APP`, `slipway rollback APP` and `slipway reload APP`: the queued requests are applied at
/// the start of a pass (or alone, by an offline CLI holding the lock).
extension Reconciler {
    /// Applies every queued request, records the outcome in the state file, and only then
    /// removes the request files: a CLI waiting for its request to go finds the answer written.
    /// `manifests`: the set this pass read (how a rolled-back app's workers run); nil when unread.
    func applyRequests(_ state: inout AgentState, manifests: ManifestSet?) async {
        let pending = requests.pending()
        guard !pending.isEmpty else { return }
        for request in pending {
            var status = state.apps[request.app.value] ?? AppStatus(condition: .converged)
            switch request.kind {
            case .deploy:
                status.memory.retryRequested = true
                logger.info("operator asked for a deploy", metadata: ["app": "\(request.app)"])
            case .rollback:
                status = await rollback(request.app, to: request.argument, force: request.force, status: status,
                                        manifest: manifests?.valid[request.app]?.manifest)
            case .reload:
                status.memory.reloadRequested = true
                logger.info("operator asked for a rolling reload", metadata: ["app": "\(request.app)"])
            }
            state.apps[request.app.value] = status
        }
        save(state)
        pending.forEach(requests.done)
    }

    /// Pins the app to the chosen kept release and runs `Rollback` to it (switch, then the
    /// workers' reload and verify when they run here), before the CLI that asked hears back.
    func rollback(_ app: AppName, to requested: String?, force: Bool = false, status: AppStatus, manifest: Manifest?) async -> AppStatus {
        var status = status
        var appLogger = logger
        appLogger[metadataKey: "app"] = "\(app)"
        let store = ReleaseStore(layout: layout(app))
        let observed = store.observe(memory: status.memory)
        switch RollbackTarget.choose(observed, requested: requested, force: force) {
        case .failure(let problem):
            status.message = "rollback refused: \(problem)"
            status.lastRequest = status.message
            appLogger.error("rollback refused: \(problem)")
        case .success(let target):
            let from = observed.current.map(\.description) ?? "nothing"
            if let contracted = observed.lastContracted, target < contracted {
                appLogger.warning("rolling back past the contract step of \(contracted) (--force): \(target) may not work with the schema")
            }
            var memory = status.memory
            memory.pin = .init(release: target, reason: "rolled back from \(from) by an operator at \(UTCTime.now.iso8601)",
                               desiredFingerprint: status.desiredFingerprint, at: .now)
            appLogger.info("rolling back from \(from) to \(target); pinned until the manifest changes")
            let rolled = await switchToKept(target, manifest: manifest, store: store, status: &status, memory: &memory, logger: appLogger)
            status.memory = memory
            // Outside a pass, nothing else records where `current` now points.
            status.current = store.current()
            if store.current() != target {
                // The switch itself failed: nothing moved, so nothing is pinned.
                status.memory.pin = nil
                status.message = "rollback failed: \(status.message ?? "current did not move")"
            } else if rolled || status.condition == .pinned {
                status.message = "pinned to \(target): rolled back from \(from); released when the manifest changes"
            }
            status.lastRequest = status.message
        }
        return status
    }

    /// Applies pending operator requests without a full pass (used by offline `slipway rollback`).
    public func applyPendingRequests() async {
        var state = stateFile.load()
        await applyRequests(&state, manifests: parsed?.set)
    }
}
