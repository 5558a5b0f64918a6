import Foundation
import Logging
import SlipwayCore

/// Acting on `slipway deploy APP`, `slipway rollback APP` and `slipway reload APP`: the queued requests are applied at
/// the start of a pass (or alone, by an offline CLI holding the lock).
extension Reconciler {
    /// Applies every queued request, records the outcome in the state file, and only then
    /// removes the request files: a CLI waiting for its request to go finds the answer written.
    func applyRequests(_ state: inout AgentState) {
        let pending = requests.pending()
        guard !pending.isEmpty else { return }
        for request in pending {
            var status = state.apps[request.app.value] ?? AppStatus(condition: .converged)
            switch request.kind {
            case .deploy:
                status.memory.retryRequested = true
                logger.info("operator asked for a deploy", metadata: ["app": "\(request.app)"])
            case .rollback:
                status = rollback(request.app, to: request.argument, force: request.force, status: status)
            case .reload:
                status.memory.reloadRequested = true
                logger.info("operator asked for a rolling reload", metadata: ["app": "\(request.app)"])
            }
            state.apps[request.app.value] = status
        }
        save(state)
        pending.forEach(requests.done)
    }

    func rollback(_ app: AppName, to requested: String?, force: Bool = false, status: AppStatus) -> AppStatus {
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
            do {
                try store.switchCurrent(to: target)
                let from = observed.current.map(\.description) ?? "nothing"
                if let contracted = observed.lastContracted, target < contracted {
                    appLogger.warning("rolling back past the contract step of \(contracted) (--force): \(target) may not work with the schema")
                }
                status.memory.pin = .init(release: target, reason: "rolled back from \(from) by an operator at \(UTCTime.now.iso8601)",
                                          desiredFingerprint: status.desiredFingerprint, at: .now)
                status.condition = .pinned
                status.current = target
                status.message = "pinned to \(target): rolled back from \(from); released when the manifest changes"
                status.lastRequest = status.message
                appLogger.info("rolled back from \(from) to \(target); pinned until the manifest changes", metadata: ["stage": "switch"])
            } catch {
                status.message = "rollback failed: \(error)"
                status.lastRequest = status.message
                appLogger.error("rollback failed: \(error)")
            }
        }
        return status
    }

    /// Applies pending operator requests without a full pass (used by offline `slipway rollback`).
    public func applyPendingRequests() {
        var state = stateFile.load()
        applyRequests(&state)
    }
}
