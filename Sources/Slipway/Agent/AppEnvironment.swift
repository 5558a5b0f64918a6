import Foundation
import SlipwayCore

/// What an app's own code runs with outside its build: the account and the environment its
/// workers and its migrate steps share (the manifest's env, the env_file over it, then
/// Slipway's own variables). Builds do not get the env_file: secrets stay out of build logs.
struct AppEnvironment: Sendable {
    var account: AppAccount?
    /// The manifest's env with the env_file merged over it (what a worker generation hashes).
    var declared: [Manifest.EnvVar]
    var variables: [String: String]

    struct Problem: Error, CustomStringConvertible {
        var description: String
    }

    static func make(manifest: Manifest, release: ReleaseID, sha: String?, config: AgentConfig) throws -> AppEnvironment {
        let account: AppAccount?
        do {
            account = try AppAccount.forApp(manifest.app, declared: manifest.backend?.user, config: config)
        } catch {
            throw Problem(description: "\(error)")
        }
        var declared = manifest.env
        if let path = manifest.backend?.envFile {
            declared = WorkerGeneration.merge(try readEnvFile(path, envDir: config.envDir, app: manifest.app), over: declared)
        }
        var variables: [String: String] = [
            "PATH": BuildRunner.basePath,
            "HOME": account?.home ?? ProcessInfo.processInfo.environment["HOME"] ?? "/",
            "LANG": "C.UTF-8",
        ]
        if let account {
            variables["USER"] = account.name
            variables["LOGNAME"] = account.name
        }
        for variable in declared { variables[variable.name] = variable.value }
        variables["SLIPWAY_APP"] = manifest.app.value
        variables["SLIPWAY_RELEASE"] = release.description
        if let sha { variables["SLIPWAY_SHA"] = sha }
        return AppEnvironment(account: account, declared: declared, variables: variables)
    }

    /// Reads an env_file, which must be the app's own: `env_dir/<app>.env` or a regular file in
    /// `env_dir/<app>/`, reached without following a symlink out of env_dir. No app can name
    /// another app's file (their secrets).
    static func readEnvFile(_ path: String, envDir: String, app: AppName) throws -> [Manifest.EnvVar] {
        guard path.hasPrefix(envDir + "/") else {
            throw Problem(description: "backend.env_file \(path) is outside the agent's env_dir \(envDir); put it there (env_dir is set in agent.yaml)")
        }
        guard path == "\(envDir)/\(app).env" || path.hasPrefix("\(envDir)/\(app)/") else {
            throw Problem(description: "backend.env_file \(path) is not app \(app)'s: an app's env_file is \(envDir)/\(app).env "
                          + "or lies in \(envDir)/\(app)/ (no app reads another app's secrets)")
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
        let ownsResolved = resolved == "\(realDir)/\(app).env" || resolved.hasPrefix("\(realDir)/\(app)/")
        guard ownsResolved, FileOps.lstatMode(resolved) == S_IFREG else {
            throw Problem(description: "backend.env_file \(path) is not a regular file of app \(app)'s inside \(envDir) (a symlink out of it, or '..')")
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
