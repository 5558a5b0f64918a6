import Foundation
import Logging
import SlipwayCore

/// What the stages of one run (a deploy, or a switch back to a kept release) share: the
/// agent's parts they use, and what earlier stages left for later ones.
struct DeployContext {
    /// The agent's parts a stage may use; the same for every run in a pass.
    struct Agent {
        let config: AgentConfig
        let mirrors: SourceMirrors
        let logger: Logger
        /// The running agent's supervisor; nil for a one-shot pass, which runs no workers.
        let supervisor: Supervisor?
        /// Where a prune hands the releases it moved into the trash.
        let trash: TrashCollector
    }

    enum Kind: Sendable {
        case deploy(ResolvedApp, manifestsCommit: String)
        /// Back to a kept release: `manifest` (when one is known) says how its workers run.
        case rollback(Manifest?)
    }

    let agent: Agent
    let kind: Kind
    let app: AppName
    let store: ReleaseStore
    /// The release this run makes live.
    let release: ReleaseID
    let sha: String
    /// Where the build's output goes (a deploy only).
    let logPath: String?
    /// `current` before this run: where a failed reload or verify switches back to.
    let previous: ReleaseID?

    /// The deploy's staging directory until the switch, then nil (removed).
    var staging: String?
    /// Whether the release is in `releases/` already (its expand runs there).
    var published = false
    /// The account the app's code runs as (nil when the agent is not root).
    var account: AppAccount?
    /// The workers the release gets (set by the build; for a rollback, at the start).
    var workers: WorkerTarget?
    var timings: [ReleaseRecord.StageTiming] = []
    /// A contract step that failed: the release stays live, degraded.
    var contractFailure: String?
    /// The app's environment (env_file included) for this release, read once for the run's
    /// workers and migrate steps alike.
    private(set) var environment: AppEnvironment? = nil

    /// The release's `AppEnvironment`, read on first use.
    mutating func appEnvironment() throws -> AppEnvironment {
        if let environment { return environment }
        guard let manifest else { throw AppEnvironment.Problem(description: "the app's environment needs its manifest") }
        let made = try AppEnvironment.make(manifest: manifest, release: release, sha: sha, config: config)
        environment = made
        return made
    }

    var logger: Logger { agent.logger }
    var config: AgentConfig { agent.config }

    var manifest: Manifest? {
        switch kind {
        case .deploy(let resolved, _): return resolved.manifest
        case .rollback(let manifest): return manifest
        }
    }

    var isRollback: Bool {
        if case .rollback = kind { return true }
        return false
    }
}

/// A failure that names its own stage (the workers' target is checked during the build, but
/// what fails is their reload).
struct StageFailure: Error, CustomStringConvertible {
    var stage: Stage
    var message: String

    var description: String { message }
}

/// One stage: does one thing to the run's context. The runner reports it (log lines, events,
/// timing, metrics) in the stage's own name.
protocol StageStep: Sendable {
    var stage: Stage { get }
    /// Time spent on this stage's work before the runner started it (the source sync that
    /// resolved the ref this pass is the fetch stage's): added to its reported duration.
    func earlierWork(_ context: DeployContext) -> Duration
    func run(_ context: inout DeployContext) async throws
}

extension StageStep {
    func earlierWork(_ context: DeployContext) -> Duration { .zero }
}
