import SlipwayCore

/// Where one app's files live under `apps_root`:
///
///     <app>/releases/<id>/   immutable releases
///     <app>/current          symlink to releases/<id>
///     <app>/shared/          survives every release and prune
///     <app>/.slipway/        the agent's own: staging/, trash/, objects/
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

    public func release(_ id: ReleaseID) -> String { releases + "/" + id.description }
}
