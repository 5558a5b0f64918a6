/// What an app's status and memory become after a deploy or a rollback ended: the one place
/// that turns a `DeployResult` into the condition, the message `status` shows and what the
/// planner remembers (a failure is not retried for the same desired state). Pure, so every
/// branch is tested without a disk.
public enum OutcomeRules {
    /// An app's condition, message and memory.
    public struct Verdict: Sendable, Equatable {
        public var condition: AppCondition
        public var message: String?
        public var memory: AppMemory

        public init(condition: AppCondition, message: String?, memory: AppMemory) {
            self.condition = condition
            self.message = message
            self.memory = memory
        }
    }

    /// After a deploy of the desired state `fingerprint` (which built `release`, if it got that far).
    public static func afterDeploy(_ result: DeployResult, fingerprint: String, release: ReleaseID?,
                                   memory: AppMemory, at now: UTCTime) -> Verdict {
        var memory = memory
        switch result {
        case .succeeded:
            memory.failure = nil
            return Verdict(condition: .converged, message: nil, memory: memory)
        case .degraded(let reason):
            memory.failure = nil
            return Verdict(condition: .degraded, message: contractFailed(reason, release: release), memory: memory)
        case .superseded(let newer):
            return Verdict(condition: .interrupted, message: superseded(by: newer), memory: memory)
        case .cancelled(let stage):
            return Verdict(condition: .interrupted, memory: memory,
                           message: "the deploy was stopped at \(stage) by the agent's shutdown; the next pass starts it again")
        case .failed(let stage, let reason):
            memory.failure = .init(fingerprint: fingerprint, stage: stage, error: reason, at: now)
            return Verdict(condition: .failed, message: "\(stage) failed: \(reason)", memory: memory)
        }
    }

    /// After going back to a kept release: `pinned` when an operator asked for it (the pin
    /// stays), converged when the kept release realises the manifest. Workers that refuse it
    /// are remembered by generation (not retried until it changes); the ones before keep serving.
    public static func afterRollback(_ result: DeployResult, to release: ReleaseID, generation: String?,
                                     memory: AppMemory) -> Verdict {
        var memory = memory
        let settled: AppCondition = memory.pin == nil ? .converged : .pinned
        let pinned = memory.pin.map { "pinned to \($0.release): \($0.reason); released when the manifest changes" }
        switch result {
        case .succeeded, .degraded:
            memory.workerFailure = nil
            if settled == .converged { memory.failure = nil }
            return Verdict(condition: settled, message: pinned, memory: memory)
        case .superseded(let newer):
            return Verdict(condition: .interrupted, message: superseded(by: newer), memory: memory)
        case .cancelled(let stage):
            return Verdict(condition: .interrupted, memory: memory,
                           message: "\(stage) was stopped by the agent's shutdown; the next pass switches to \(release) again")
        case .failed(.switch, let reason):
            return Verdict(condition: .failed, message: "switching to \(release) failed: \(reason)", memory: memory)
        case .failed(let stage, let reason):
            if let generation { memory.workerFailure = generation }
            return Verdict(condition: .failed, memory: memory,
                           message: "\(stage) failed: \(reason); the workers that ran before keep serving")
        }
    }

    public static func superseded(by commit: String) -> String {
        "superseded by manifests commit \(commit.prefix(12)) before the switch; the next pass deploys it"
    }

    public static func contractFailed(_ error: String, release: ReleaseID?) -> String {
        "contract failed: \(error)\nrelease \(release.map(\.description) ?? "?") stays live (it works with the expanded schema); "
            + "the contract step runs again on the next pass"
    }
}

extension OutcomeRules.Verdict {
    init(condition: AppCondition, memory: AppMemory, message: String) {
        self.init(condition: condition, message: message, memory: memory)
    }
}
