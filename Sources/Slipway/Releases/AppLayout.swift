import SlipwayCore

/// Where one app's files live under `apps_root`:
///
///     <app>/releases/<id>/   immutable releases
///     <app>/current          symlink to releases/<id>
///     <app>/shared/          survives every release and prune
///     <app>/frontend-archive symlink to .slipway/archive/<n>: every kept release's frontend files
///     <app>/.slipway/        the agent's own: staging/, trash/, objects/, archive/
public struct AppLayout: Sendable {
    public let app: AppName
    public let root: String

    public init(appsRoot: String, app: AppName) {
        self.app = app
        self.root = appsRoot + "/" + app.value
    }

    public var releases: String { root + "/releases" }
    public var current: String { root + "/current" }
    public var shared: String { root + "/shared" }
    var internalDir: String { root + "/.slipway" }
    var staging: String { internalDir + "/staging" }
    var trash: String { internalDir + "/trash" }
    var objects: String { internalDir + "/objects" }
    /// What nginx tries for an asset missing from `current` (relative to `root`).
    public static let frontendArchiveName = "frontend-archive"
    var frontendArchive: String { root + "/" + Self.frontendArchiveName }
    var archives: String { internalDir + "/archive" }

    public func release(_ id: ReleaseID) -> String { releases + "/" + id.description }
}
