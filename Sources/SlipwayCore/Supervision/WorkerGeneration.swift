import Crypto

/// What a worker process was started from: its release, its command, its user, its socket and
/// its complete environment. Workers of another generation are replaced by a rolling reload, so
/// a changed env (in the manifest or the host's env_file) never leaves a stale worker behind.
public struct WorkerGeneration: Sendable, Equatable {
    public var release: ReleaseID
    public var command: String
    public var user: String?
    public var listen: WorkerListen?
    /// Sorted by name: the manifest's env with the env_file merged over it.
    public var environment: [Manifest.EnvVar]
    /// The host's own secret (`state_dir/generation.key`) that keys `id`.
    public var key: [UInt8]

    public init(release: ReleaseID, command: String, user: String?, listen: WorkerListen?, environment: [Manifest.EnvVar], key: [UInt8] = []) {
        self.release = release
        self.command = command
        self.user = user
        self.listen = listen
        self.environment = environment
        self.key = key
    }

    /// The app's env with the env_file's values winning.
    public static func merge(_ env: [Manifest.EnvVar], over base: [Manifest.EnvVar]) -> [Manifest.EnvVar] {
        var values: [String: String] = [:]
        for variable in base { values[variable.name] = variable.value }
        for variable in env { values[variable.name] = variable.value }
        return values.map { Manifest.EnvVar(name: $0.key, value: $0.value) }.sorted { $0.name < $1.name }
    }

    /// A short hex id (16 digits of an HMAC-SHA-256 under the host's key), safe to show: without
    /// the key, which never leaves the host, no env value can be guessed from it (an unkeyed hash
    /// gave an env_file secret away to a 5-word guess list).
    public var id: String {
        var canonical = "slipway-worker-generation/1\n"
        func line(_ key: String, _ value: String?) {
            let text = value ?? "<none>"
            canonical += "\(key)=\(text.utf8.count):\(text)\n"
        }
        line("release", release.description)
        line("command", command)
        line("user", user)
        line("listen", listen?.description)
        for variable in environment { line("env.\(variable.name)", variable.value) }
        let code = HMAC<SHA256>.authenticationCode(for: Array(canonical.utf8), using: SymmetricKey(data: key))
        return Hex.encode(Array(code).prefix(8))
    }
}
