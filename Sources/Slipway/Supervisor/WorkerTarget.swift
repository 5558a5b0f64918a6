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
}

extension WorkerTarget {
    struct Problem: Error, CustomStringConvertible {
        var description: String
    }

    /// The target for `manifest`'s workers running `release`: its directory, account and the
    /// full environment (the manifest's env, the env_file over it, then Slipway's own).
    static func make(manifest: Manifest, release: ReleaseID, sha: String?, config: AgentConfig) throws -> WorkerTarget? {
        guard let backend = manifest.backend, let workers = backend.workers else { return nil }
        let account: AppAccount?
        do {
            account = try AppAccount.forApp(declared: backend.user, fallback: config.appsUser)
        } catch {
            throw Problem(description: "\(error)")
        }
        var env = manifest.env
        if let path = backend.envFile {
            env = WorkerGeneration.merge(try readEnvFile(path, envDir: config.envDir), over: env)
        }
        var environment: [String: String] = [
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": account?.home ?? ProcessInfo.processInfo.environment["HOME"] ?? "/",
            "LANG": "C.UTF-8",
        ]
        if let account {
            environment["USER"] = account.name
            environment["LOGNAME"] = account.name
        }
        for variable in env { environment[variable.name] = variable.value }
        environment["SLIPWAY_APP"] = manifest.app.value
        environment["SLIPWAY_RELEASE"] = release.description
        if let sha { environment["SLIPWAY_SHA"] = sha }
        if case .tcp(let host, let port) = workers.listen {
            environment["HOST"] = host
            environment["PORT"] = String(port)
        }
        let generation = WorkerGeneration(release: release, command: workers.command, user: account?.name, listen: workers.listen,
                                          environment: env)
        let cpus = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        return WorkerTarget(app: manifest.app, generation: generation, workers: workers, count: workers.instances.resolved(cpus: cpus),
                            directory: AppLayout(appsRoot: config.appsRoot, app: manifest.app).releases + "/\(release)/backend",
                            account: account, environment: environment)
    }

    /// Reads an env_file, which must be a regular file directly or deeper inside `env_dir`,
    /// reached without following a symlink out of it.
    static func readEnvFile(_ path: String, envDir: String) throws -> [Manifest.EnvVar] {
        guard path.hasPrefix(envDir + "/") else {
            throw Problem(description: "backend.env_file \(path) is outside the agent's env_dir \(envDir); put it there (env_dir is set in agent.yaml)")
        }
        guard let real = realpath(path, nil) else {
            throw Problem(description: "backend.env_file \(path) cannot be read: \(String(cString: strerror(errno)))")
        }
        defer { free(real) }
        let resolved = String(cString: real)
        let realDir = realpath(envDir, nil).map { pointer in
            defer { free(pointer) }
            return String(cString: pointer)
        } ?? envDir
        guard resolved.hasPrefix(realDir + "/"), FileOps.lstatMode(resolved) == S_IFREG else {
            throw Problem(description: "backend.env_file \(path) is not a regular file inside \(envDir)")
        }
        guard let bytes = FileOps.readFile(resolved, limit: 1 << 20) else {
            throw Problem(description: "backend.env_file \(path) cannot be read (or is over 1 MiB)")
        }
        switch EnvFile.parse(String(decoding: bytes, as: UTF8.self)) {
        case .success(let values): return values
        case .failure(let problem): throw Problem(description: "backend.env_file \(path): \(problem)")
        }
    }
}
