import Foundation
import SlipwayCore

/// An app's home for its builds and migrate steps: `<apps_root>/<app>/.slipway/home`, owned by
/// the app's account (0700), kept across releases, so npm, pip and Go find their caches from
/// the deploy before. Its parent belongs to the agent, so the account can fill the home but
/// never swap the home itself for a link; what is inside is the account's, and the agent
/// touches it only through `NoFollowTree`.
public struct BuildHome: Sendable {
    public let path: String

    public init(appsRoot: String, app: AppName) {
        self.init(layout: AppLayout(appsRoot: appsRoot, app: app))
    }

    init(layout: AppLayout) {
        path = layout.internalDir + "/home"
    }

    /// HOME and the cache locations the usual tools read, all inside the home.
    public var environment: [String: String] {
        [
            "HOME": path,
            "XDG_CACHE_HOME": path + "/.cache",
            "npm_config_cache": path + "/.npm",
            "PIP_CACHE_DIR": path + "/.cache/pip",
            "GOCACHE": path + "/.cache/go-build",
            "GOMODCACHE": path + "/go/pkg/mod",
        ]
    }

    /// Makes the home (if missing) and gives it to `account` (the agent's own user without one).
    func prepare(for account: AppAccount?) throws {
        let parent = String(path[..<path.lastIndex(of: "/")!])
        try FileOps.makeDirectories(parent)
        if mkdir(path, 0o700) != 0 && errno != EEXIST { throw SystemError("creating the build home", path: path) }
        // The parent is the agent's: nobody else can have put a link here, but check anyway.
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError("opening the build home", path: path) }
        defer { close(fd) }
        let uid = account?.uid ?? geteuid(), gid = account?.gid ?? getegid()
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw SystemError("reading the build home", path: path) }
        if info.st_uid != uid || info.st_gid != gid {
            guard fchown(fd, uid, gid) == 0 else { throw SystemError("giving the build home to its account", path: path) }
        }
        if info.st_mode & 0o7777 != 0o700 { fchmod(fd, 0o700) }
    }

    /// Removes the home and every cache in it (`slipway cache clear APP`); the next build starts
    /// with an empty one. Returns whether there was one. The home is first renamed out of the
    /// way (a build starting now gets a fresh one), then removed without following links.
    @discardableResult
    public func clear() throws -> Bool {
        guard FileOps.lstatMode(path) != nil else { return false }
        // Its own trash, not the release store's: that one is emptied by path-based removal.
        let trash = String(path[..<path.lastIndex(of: "/")!]) + "/home-trash"
        try FileOps.makeDirectories(trash, mode: 0o700)
        let moved = trash + "/home-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        guard rename(path, moved) == 0 else { throw SystemError("moving the build home aside", path: path) }
        try NoFollowTree.remove(moved)
        return true
    }
}
