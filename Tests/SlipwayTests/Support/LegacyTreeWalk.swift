import Foundation
@testable import Slipway

/// The path-based walks Slipway used before `SafeTree` (FileOps.removeTree and
/// FileOps.changeOwner, verbatim), kept only to show in `SafeTreeRaceTests` that the racer wins
/// against them and to compare speeds in `TreeWalkBench`. Never use it for anything else.
enum LegacyTreeWalk {
    static func removeTree(_ path: String) throws {
        guard let kind = FileOps.lstatMode(path) else { return }
        if kind == S_IFDIR {
            chmod(path, 0o700)
            for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] {
                try removeTree(path + "/" + name)
            }
            if rmdir(path) != 0 && errno != ENOENT { throw SystemError("removing directory", path: path) }
        } else if unlink(path) != 0 && errno != ENOENT {
            throw SystemError("removing", path: path)
        }
    }

    static func changeOwner(_ path: String, uid: uid_t, gid: gid_t, directoriesOnly: Bool = false) {
        guard let kind = FileOps.lstatMode(path) else { return }
        if kind == S_IFDIR {
            lchown(path, uid, gid)
            for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] {
                changeOwner(path + "/" + name, uid: uid, gid: gid, directoriesOnly: directoriesOnly)
            }
        } else if !directoriesOnly {
            var info = stat()
            if lstat(path, &info) == 0, info.st_uid != uid || info.st_gid != gid { lchown(path, uid, gid) }
        }
    }
}
