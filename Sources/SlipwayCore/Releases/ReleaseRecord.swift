/// What `release.json` says about a release: where it came from, how it was made, how it went.
public struct ReleaseRecord: Sendable, Equatable, Codable {
    public var app: AppName
    public var id: ReleaseID
    public var source: SourceInfo
    public var manifest: ManifestInfo
    /// Identifies the desired state this release realises (see `ReleaseSpec.fingerprint`).
    public var fingerprint: String
    public var createdAt: UTCTime
    public var stages: [StageTiming]
    public var result: Result
    /// Why a published release failed (its expand or its workers did not come up); nil when it did not.
    public var failure: String?
    /// When this host finished the release's expand step (or saw `migrate.check` pass).
    public var expandedAt: UTCTime?
    /// When the release's contract step finished; from then on, releases older than this one
    /// may not work with the schema, so a rollback past it needs `--force`.
    public var contractedAt: UTCTime?

    public enum Result: String, Sendable, Codable {
        case succeeded, failed
        /// Published, but its expand has not finished: never switched to, never reused.
        case pending
    }

    public struct SourceInfo: Sendable, Equatable, Codable {
        public var repo: String
        public var ref: String
        public var sha: String

        public init(repo: String, ref: String, sha: String) {
            self.repo = repo
            self.ref = ref
            self.sha = sha
        }
    }

    public struct ManifestInfo: Sendable, Equatable, Codable {
        public var commit: String
        public var path: String

        public init(commit: String, path: String) {
            self.commit = commit
            self.path = path
        }
    }

    public struct StageTiming: Sendable, Equatable, Codable {
        public var stage: Stage
        public var startedAt: UTCTime
        public var milliseconds: Int64

        public init(stage: Stage, startedAt: UTCTime, milliseconds: Int64) {
            self.stage = stage
            self.startedAt = startedAt
            self.milliseconds = milliseconds
        }
    }

    public init(app: AppName, id: ReleaseID, source: SourceInfo, manifest: ManifestInfo, fingerprint: String,
                createdAt: UTCTime, stages: [StageTiming], result: Result) {
        self.app = app
        self.id = id
        self.source = source
        self.manifest = manifest
        self.fingerprint = fingerprint
        self.createdAt = createdAt
        self.stages = stages
        self.result = result
    }
}
