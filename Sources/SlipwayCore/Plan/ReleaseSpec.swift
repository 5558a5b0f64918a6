import Crypto

/// Everything that shapes the bytes of a release: the source commit and the manifest fields
/// that drive the build and the layout. Two passes with the same spec need no new release;
/// fields such as `keep` or `hosts` change nothing on disk and are left out on purpose.
public struct ReleaseSpec: Sendable, Equatable {
    public var sourceSHA: String
    public var frontend: Manifest.Frontend?
    public var backend: Manifest.Backend?
    public var shared: [RelativePath]
    public var env: [Manifest.EnvVar]
    /// The steps that gate the switch: a release made with another expand (or check) is not
    /// the same desired state. `contract`, `timeout` and `hosts` are left out: changing them
    /// needs no new release (a pending contract runs with the manifest's current command).
    public var expand: String?
    public var check: String?

    public init(manifest: Manifest, sourceSHA: String) {
        self.sourceSHA = sourceSHA
        self.frontend = manifest.frontend
        self.backend = manifest.backend
        self.shared = manifest.shared
        self.env = manifest.env
        self.expand = manifest.migrate?.expand
        self.check = manifest.migrate?.check
    }

    /// A SHA-256 over a canonical rendering of the spec (hex).
    public var fingerprint: String {
        var canonical = "slipway-release-spec/1\n"
        func line(_ key: String, _ value: String?) {
            // Length-prefixed, so no value can forge the next line.
            let text = value ?? "<none>"
            canonical += "\(key)=\(text.utf8.count):\(text)\n"
        }
        line("source", sourceSHA)
        line("frontend.build", frontend?.build)
        line("frontend.output", frontend?.output.value)
        line("backend", backend == nil ? nil : "yes")
        line("backend.build", backend?.build)
        line("backend.dir", backend?.dir.value)
        for path in shared { line("shared", path.value) }
        for variable in env { line("env.\(variable.name)", variable.value) }
        // Only when declared, so the fingerprints of releases made before `migrate` existed hold.
        if let expand { line("migrate.expand", expand) }
        if let check { line("migrate.check", check) }
        return Hex.encode(SHA256.hash(data: Array(canonical.utf8)))
    }
}
