import Foundation
import Testing
@testable import Slipway
@testable import SlipwayCore

/// Issue 20: a tip that moved in a source on a local path is fetched by copying only the
/// objects the mirror lacks, no pack built, and the mirror stays a whole repository.
@Suite(.timeLimit(.minutes(2))) struct LocalFetchTests {
    /// A source with a 3-level tree, a tag and a second branch, mirrored once.
    private func source(_ dir: TempDir) throws -> (repo: String, mirror: GitRepository) {
        let repo = dir.path + "/src"
        try dir.git(["init", "-q", "-b", "main", repo])
        for folder in ["a", "a/b", "c"] {
            try FileManager.default.createDirectory(atPath: repo + "/" + folder, withIntermediateDirectories: true)
            for index in 0..<20 { try "\(folder) \(index)".write(toFile: "\(repo)/\(folder)/f\(index)", atomically: true, encoding: .utf8) }
        }
        try dir.git(["-C", repo, "add", "-A"])
        try dir.git(["-C", repo, "commit", "-q", "-m", "one"])
        try dir.git(["-C", repo, "branch", "old"])
        let mirror = try GitRepository.openMirror(at: dir.path + "/mirror.git")
        #expect(try mirror.sync(from: repo, refspecs: SourceMirrors.refspecs, access: .anonymous) == .fetched)
        return (repo, mirror)
    }

    private func packs(_ mirror: GitRepository) -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: mirror.path + "/objects/pack")) ?? []).filter { $0.hasSuffix(".pack") }.count
    }

    private func looseObjects(_ mirror: GitRepository) -> Int {
        let folders = (try? FileManager.default.contentsOfDirectory(atPath: mirror.path + "/objects")) ?? []
        return folders.filter { $0.count == 2 }.reduce(0) { count, folder in
            count + ((try? FileManager.default.contentsOfDirectory(atPath: mirror.path + "/objects/" + folder)) ?? []).count
        }
    }

    private func refs(_ dir: TempDir, _ repo: String) throws -> String {
        try dir.gitOutput(["-C", repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads", "refs/tags"])
    }

    @Test func aMovedTipIsFetchedByCopyingItsNewObjectsOnly() throws {
        let dir = TempDir()
        let (repo, mirror) = try source(dir)
        let packsBefore = packs(mirror), looseBefore = looseObjects(mirror)
        // One file changed two folders down: a commit, three trees and a blob are new.
        try "changed".write(toFile: repo + "/a/b/f3", atomically: true, encoding: .utf8)
        try dir.git(["-C", repo, "commit", "-q", "-am", "two"])
        try dir.git(["-C", repo, "tag", "-a", "-m", "annotated", "v2"])
        try dir.git(["-C", repo, "branch", "-D", "old"])
        #expect(try mirror.sync(from: repo, refspecs: SourceMirrors.refspecs, access: .anonymous) == .fetched)
        #expect(packs(mirror) == packsBefore, "no pack was built")
        #expect(looseObjects(mirror) - looseBefore == 6, "commit, 3 trees, blob and the tag object")
        #expect(try refs(dir, mirror.path) == refs(dir, repo), "refs set, the deleted branch pruned")
        #expect(try mirror.referenceTarget("refs/tags/v2") == dir.gitOutput(["-C", repo, "rev-parse", "HEAD"]))
        try dir.git(["-C", mirror.path, "fsck", "--full", "--strict"])
        #expect(try mirror.sync(from: repo, refspecs: SourceMirrors.refspecs, access: .anonymous) == .unchanged)
    }

    /// New history with a merge and a new branch: every commit arrives, children before parents.
    @Test func newHistoryWithAMergeArrivesWhole() throws {
        let dir = TempDir()
        let (repo, mirror) = try source(dir)
        try dir.git(["-C", repo, "checkout", "-q", "-b", "topic"])
        for index in 0..<3 {
            try "topic \(index)".write(toFile: repo + "/c/t\(index)", atomically: true, encoding: .utf8)
            try dir.git(["-C", repo, "add", "-A"])
            try dir.git(["-C", repo, "commit", "-q", "-m", "topic \(index)"])
        }
        try dir.git(["-C", repo, "checkout", "-q", "main"])
        try "main side".write(toFile: repo + "/a/f0", atomically: true, encoding: .utf8)
        try dir.git(["-C", repo, "commit", "-q", "-am", "main side"])
        try dir.git(["-C", repo, "merge", "-q", "--no-edit", "topic"])
        let packsBefore = packs(mirror)
        #expect(try mirror.sync(from: repo, refspecs: SourceMirrors.refspecs, access: .anonymous) == .fetched)
        #expect(packs(mirror) == packsBefore)
        #expect(try refs(dir, mirror.path) == refs(dir, repo))
        try dir.git(["-C", mirror.path, "fsck", "--full", "--strict"])
        let count = try dir.gitOutput(["-C", mirror.path, "rev-list", "--count", "refs/heads/main"])
        #expect(count == "6")
    }

    /// More than the copy takes on goes through the transport (a pack), with the same result;
    /// a copy refused for its size leaves the mirror as it was.
    @Test func aLargePushIsLeftToTheTransport() throws {
        let dir = TempDir(inMemory: true)
        let (repo, mirror) = try source(dir)
        try FileManager.default.createDirectory(atPath: repo + "/many", withIntermediateDirectories: true)
        for index in 0..<2_100 { try "new \(index)".write(toFile: repo + "/many/n\(index)", atomically: false, encoding: .utf8) }
        try dir.git(["-C", repo, "add", "-A"])
        try dir.git(["-C", repo, "commit", "-q", "-m", "many"])
        let tip = try dir.gitOutput(["-C", repo, "rev-parse", "HEAD"])
        #expect(LocalFetch.sync(mirror, from: repo, refspecs: SourceMirrors.refspecs, limits: .init(objects: 10)) == nil)
        #expect(try mirror.referenceTarget("refs/heads/main") != tip, "nothing was set")
        let packsBefore = packs(mirror), looseBefore = looseObjects(mirror)
        #expect(try mirror.sync(from: repo, refspecs: SourceMirrors.refspecs, access: .anonymous) == .fetched)
        #expect(packs(mirror) == packsBefore + 1, "2,103 new objects came as a pack")
        #expect(looseObjects(mirror) == looseBefore)
        #expect(try mirror.referenceTarget("refs/heads/main") == tip)
        try dir.git(["-C", mirror.path, "fsck", "--full", "--strict"])
    }

    /// Whoever can write the source's object files cannot make the mirror hold an object under a
    /// name its bytes do not hash to: the copy checks each object, and the fetch fails.
    @Test func aSourceObjectWhoseBytesDoNotMatchItsNameIsNeverCopied() throws {
        let dir = TempDir()
        let (repo, mirror) = try source(dir)
        let before = try #require(try mirror.referenceTarget("refs/heads/main"))
        try "honest".write(toFile: repo + "/c/f1", atomically: true, encoding: .utf8)
        try dir.git(["-C", repo, "commit", "-q", "-am", "two"])
        let blob = try dir.gitOutput(["-C", repo, "rev-parse", "HEAD:c/f1"])
        // Another object's (valid, compressed) file put under the honest blob's name.
        let forged = repo + "/forged"
        try "forged".write(toFile: forged, atomically: true, encoding: .utf8)
        let other = try dir.gitOutput(["-C", repo, "hash-object", "-w", forged])
        let objects = repo + "/.git/objects/"
        let target = objects + blob.prefix(2) + "/" + blob.dropFirst(2)
        chmod(target, 0o644)
        unlink(target)
        try FileManager.default.copyItem(atPath: objects + other.prefix(2) + "/" + other.dropFirst(2), toPath: target)
        #expect(LocalFetch.sync(mirror, from: repo, refspecs: SourceMirrors.refspecs) == nil)
        _ = try? mirror.sync(from: repo, refspecs: SourceMirrors.refspecs, access: .anonymous)
        let probe = try? dir.gitOutput(["-C", mirror.path, "cat-file", "-p", blob])
        #expect(probe == nil || probe == "" || probe == "honest", "the mirror never answers the forged bytes for the honest name")
        if try mirror.referenceTarget("refs/heads/main") == before {
            try dir.git(["-C", mirror.path, "fsck", "--full"])
        }
    }
}
