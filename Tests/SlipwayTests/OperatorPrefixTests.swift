import Foundation
import Testing
@testable import Slipway

/// The operator may put apps_root or state_dir below a symlink (`/srv -> /data/srv`); a link an
/// app's account planted on the way is never followed.
@Suite(.enabled(if: geteuid() == 0, "needs root: a link owned by another account"))
struct OperatorPrefixTests {
    @Test func aRootOwnedLinkIsFollowedAnAppsLinkIsNot() throws {
        let dir = TempDir()
        try FileManager.default.createDirectory(atPath: dir.path + "/data/srv", withIntermediateDirectories: true)
        symlink(dir.path + "/data/srv", dir.path + "/srv")
        try FileOps.makeDirectories(dir.path + "/srv/apps/web/releases")
        #expect(FileOps.isDirectory(dir.path + "/data/srv/apps/web/releases"))

        // The same kind of link, made by an app's account (nobody here): refused, nothing made.
        try FileManager.default.createDirectory(atPath: dir.path + "/elsewhere", withIntermediateDirectories: true)
        symlink(dir.path + "/elsewhere", dir.path + "/srv/apps/web/shared")
        lchown(dir.path + "/srv/apps/web/shared", 65534, 65534)
        #expect(throws: SystemError.self) { try FileOps.makeDirectories(dir.path + "/srv/apps/web/shared/uploads") }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path + "/elsewhere").isEmpty)
    }
}
