/// What the manifests at the tracked commit want for one app on this host.
public enum DesiredApp: Sendable, Equatable {
    /// A valid manifest whose source ref resolved to a commit.
    case resolved(ResolvedApp)
    /// The manifest is invalid: nothing new is deployed, the last good release stays.
    case invalid(Diagnostics)
    /// The source could not be fetched or the ref not resolved.
    case unresolved(String)
    /// The source commit is not signed by an allowed key (`verify.sources: true`).
    case untrusted(String)
    /// The manifest's `hosts` leaves this host out.
    case notOnThisHost
    /// No manifest names this app any more.
    case removed
}

extension DesiredApp {
    /// The manifest, when it is valid and its source resolved.
    public var manifest: Manifest? {
        if case .resolved(let app) = self { return app.manifest }
        return nil
    }
}

public struct ResolvedApp: Sendable, Equatable {
    public var manifest: Manifest
    public var manifestPath: String
    public var sourceSHA: String
    /// This host's part in the app's migrations (from `migrate.hosts` and the agent's `host`).
    public var migrationRole: MigrationRole

    public init(manifest: Manifest, manifestPath: String, sourceSHA: String, migrationRole: MigrationRole = .none) {
        self.manifest = manifest
        self.manifestPath = manifestPath
        self.sourceSHA = sourceSHA
        self.migrationRole = migrationRole
    }

    public var spec: ReleaseSpec { ReleaseSpec(manifest: manifest, sourceSHA: sourceSHA) }
}

/// A release found on disk.
public struct ObservedRelease: Sendable, Equatable {
    public var id: ReleaseID
    /// Nil when its record is missing or unreadable: such a release is never reused.
    public var fingerprint: String?
    public var succeeded: Bool
    /// Its contract step ran (see `ReleaseRecord.contractedAt`).
    public var contracted: Bool

    public init(id: ReleaseID, fingerprint: String?, succeeded: Bool, contracted: Bool = false) {
        self.id = id
        self.fingerprint = fingerprint
        self.succeeded = succeeded
        self.contracted = contracted
    }
}

/// What is on disk for one app, plus what the agent remembers about it.
public struct ObservedApp: Sendable, Equatable {
    public var releases: [ObservedRelease]
    public var current: ReleaseID?
    public var memory: AppMemory

    public init(releases: [ObservedRelease] = [], current: ReleaseID? = nil, memory: AppMemory = AppMemory()) {
        self.releases = releases
        self.current = current
        self.memory = memory
    }

    public func release(_ id: ReleaseID) -> ObservedRelease? { releases.first { $0.id == id } }

    /// The newest release whose contract step ran: older releases may not work with the schema.
    public var lastContracted: ReleaseID? { releases.filter(\.contracted).map(\.id).max() }
}

/// What the agent remembers about an app between passes (kept in the state file).
public struct AppMemory: Sendable, Equatable, Codable {
    /// The last deploy that failed, and for which desired state: not retried until that changes.
    public var failure: Failure?
    /// Set by `slipway rollback`: stay on this release until the desired state changes.
    public var pin: Pin?
    /// Set by `slipway deploy APP`: try a remembered failure once more.
    public var retryRequested: Bool
    /// The worker generation whose reload failed: not tried again until it changes, or until
    /// `slipway reload APP`.
    public var workerFailure: String?
    /// Set by `slipway reload APP`: replace every worker, even those already up to date.
    public var reloadRequested: Bool?
    /// When a pass first saw the app no longer declared for this host: its workers keep
    /// serving for agent.yaml `removal_grace` from then (see `RemovalPolicy`).
    public var removingSince: UTCTime?

    public init(failure: Failure? = nil, pin: Pin? = nil, retryRequested: Bool = false) {
        self.failure = failure
        self.pin = pin
        self.retryRequested = retryRequested
    }

    public struct Failure: Sendable, Equatable, Codable {
        public var fingerprint: String
        public var stage: Stage
        public var error: String
        public var at: UTCTime

        public init(fingerprint: String, stage: Stage, error: String, at: UTCTime) {
            self.fingerprint = fingerprint
            self.stage = stage
            self.error = error
            self.at = at
        }
    }

    public struct Pin: Sendable, Equatable, Codable {
        public var release: ReleaseID
        public var reason: String
        /// The desired fingerprint when the pin was set; nil until the next pass learns it.
        public var desiredFingerprint: String?
        public var at: UTCTime

        public init(release: ReleaseID, reason: String, desiredFingerprint: String?, at: UTCTime) {
            self.release = release
            self.reason = reason
            self.desiredFingerprint = desiredFingerprint
            self.at = at
        }
    }
}
