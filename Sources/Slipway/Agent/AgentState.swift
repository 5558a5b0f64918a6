import Foundation
import SlipwayCore

/// What the agent knows between passes, kept in `state_dir/state.json`: per app, the memory
/// the planner needs (failures, pins) and what `slipway status` shows.
public struct AgentState: Sendable, Codable, Equatable {
    public var manifestsCommit: String?
    public var lastPass: PassSummary?
    /// Nil when `manifests.verify` is not configured: commits are not verified.
    public var trust: TrustStatus?
    /// Why the last fetch of the manifests repo failed (the pass used the last fetched commit); nil when it worked.
    public var manifestsFetchError: String?
    public var apps: [String: AppStatus] = [:]
    /// A manifests commit whose removals wait for `slipway apply --allow-removals`.
    public var heldRemoval: RemovalPolicy.MassRemoval?
    /// The commit an operator allowed to remove apps.
    public var allowedRemovals: String?

    public init() {}

    public struct PassSummary: Sendable, Codable, Equatable {
        public var startedAt: UTCTime
        public var finishedAt: UTCTime
        public var converged: Bool
        public var error: String?
    }
}

/// One app's status: declared vs running, what happened last, what is wrong.
public struct AppStatus: Sendable, Codable, Equatable {
    public typealias Condition = AppCondition

    public var condition: Condition
    public var message: String?
    public var manifestPath: String?
    public var declaredRef: String?
    public var declaredSHA: String?
    public var desiredFingerprint: String?
    public var current: ReleaseID?
    public var lastDeploy: DeployOutcome?
    public var memory: AppMemory
    /// What became of the last operator request (rollback): kept apart from `message`, which
    /// every pass rewrites, so the CLI that asked can report it.
    public var lastRequest: String?

    public init(condition: Condition, memory: AppMemory = AppMemory()) {
        self.condition = condition
        self.memory = memory
    }

    /// Whether the app is where the manifests want it (or where an operator pinned it).
    public var isSettled: Bool { condition.isSettled }
}

/// How the last deploy of an app went, stage by stage.
public struct DeployOutcome: Sendable, Codable, Equatable {
    public var release: ReleaseID?
    public var sha: String
    public var result: ReleaseRecord.Result
    public var failedStage: Stage?
    public var error: String?
    public var logPath: String?
    public var stages: [ReleaseRecord.StageTiming]
    public var finishedAt: UTCTime
    /// Nil for a deploy (and in state files from before rollbacks were recorded here).
    public var kind: Kind?

    public enum Kind: String, Sendable, Codable {
        case deploy
        /// A switch back to a kept release (`slipway rollback`, or a kept release that realises the manifest).
        case rollback
    }

    public init(release: ReleaseID?, sha: String, result: ReleaseRecord.Result, failedStage: Stage?, error: String?,
                logPath: String?, stages: [ReleaseRecord.StageTiming], finishedAt: UTCTime, kind: Kind? = nil) {
        self.release = release
        self.sha = sha
        self.result = result
        self.failedStage = failedStage
        self.error = error
        self.logPath = logPath
        self.stages = stages
        self.finishedAt = finishedAt
        self.kind = kind
    }
}

/// Reads and writes `state.json` atomically.
public struct StateFile: Sendable {
    public let path: String

    public init(stateDir: String) {
        path = stateDir + "/state.json"
    }

    public func load() -> AgentState {
        guard let bytes = FileOps.readFile(path), let state = try? JSONDecoder().decode(AgentState.self, from: Data(bytes)) else {
            return AgentState()
        }
        return state
    }

    public func save(_ state: AgentState) throws {
        try FileOps.writeAtomically(Array(try JSONFiles.encode(state)), to: path, mode: 0o640)
    }
}

extension UTCTime {
    /// Now, from the system clock: the shell's job, never the core's.
    public static var now: UTCTime {
        UTCTime(millisecondsSinceEpoch: Int64((Date().timeIntervalSince1970 * 1000).rounded()))
    }
}
