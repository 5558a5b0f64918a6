import Foundation
import SlipwayCore

/// What should run for one app: `count` workers of one generation, in one release's own
/// backend directory (never through `current`, so a worker never sees files of a release
/// switched in while it runs or drains).
struct WorkerTarget: Sendable {
    var app: AppName
    var generation: WorkerGeneration
    var workers: Workers
    var count: Int
    /// `<apps_root>/<app>/releases/<id>/backend`
    var directory: String
    var account: AppAccount?
    /// Everything but the per-worker variables (LISTEN_*, NOTIFY_SOCKET, SLIPWAY_WORKER).
    var environment: [String: String]

    var id: String { generation.id }
}

/// How a rollout went.
enum RolloutResult: Sendable, Equatable {
    /// Every worker already ran the target.
    case unchanged
    case done(replaced: Int, started: Int, stopped: Int)
    /// The old workers (if any) still serve; `stage` is reload or verify.
    case failed(stage: Stage, reason: String)
    /// The listener could not be bound (another program holds the address, a port below 1024
    /// not allowed, a path refused): no worker of the target started, the old ones still serve.
    /// The host is at fault, not the generation, so it is tried again on every pass (a failed
    /// generation is not, until it changes).
    case blocked(reason: String)

    /// The stage and reason of a failed or blocked rollout (blocked fails the reload stage).
    var failure: (stage: Stage, reason: String)? {
        switch self {
        case .unchanged, .done: return nil
        case .failed(let stage, let reason): return (stage, reason)
        case .blocked(let reason): return (.reload, reason)
        }
    }

    var succeeded: Bool { failure == nil }
}

extension WorkerTarget {
    /// The target for `manifest`'s workers running `release`: its directory, account and the
    /// full environment (`AppEnvironment`, plus HOST and PORT for a TCP listener).
    /// `environment`: the app's, when the caller has read it already.
    static func make(manifest: Manifest, release: ReleaseID, sha: String?, config: AgentConfig,
                     environment: AppEnvironment? = nil) throws -> WorkerTarget? {
        guard let workers = manifest.backend?.workers else { return nil }
        let app = try environment ?? AppEnvironment.make(manifest: manifest, release: release, sha: sha, config: config)
        var environment = app.variables
        if case .tcp(let host, let port) = workers.listen {
            environment["HOST"] = host
            environment["PORT"] = String(port)
        }
        environment = NodePreload.environment(environment, for: workers)
        let generation = WorkerGeneration(release: release, command: workers.command, user: app.account?.name, listen: workers.listen,
                                          environment: app.declared, key: try GenerationKey.load(stateDir: config.stateDir))
        let cpus = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        return WorkerTarget(app: manifest.app, generation: generation, workers: workers, count: workers.instances.resolved(cpus: cpus),
                            directory: AppLayout(appsRoot: config.appsRoot, app: manifest.app).releases + "/\(release)/backend",
                            account: app.account, environment: environment)
    }
}
