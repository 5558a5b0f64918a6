import Foundation
import Testing
@testable import Slipway
@testable import SlipwayCore

/// An agent killed in the middle of a fetch leaves libgit2's lock files in its mirror, and every
/// later fetch of that mirror failed ("failed to lock file … for writing"): the app stayed on its
/// release whatever was pushed. The next agent removes them at its start.
@Suite(.timeLimit(.minutes(2))) struct StaleGitLockTests {
    @Test func locksAKilledFetchLeftAreRemovedAndTheMirrorFetchesAgain() throws {
        let dir = TempDir()
        let source = dir.path + "/src"
        try dir.git(["init", "-q", "-b", "main", source])
        try "one".write(toFile: source + "/file", atomically: true, encoding: .utf8)
        try dir.git(["-C", source, "add", "-A"])
        try dir.git(["-C", source, "commit", "-q", "-m", "one"])
        let mirrors = dir.path + "/state/mirrors"
        let mirror = try GitRepository.openMirror(at: mirrors + "/sources/src-0123456789abcdef.git")
        #expect(try mirror.sync(from: source, refspecs: SourceMirrors.refspecs, access: .anonymous) == .fetched)
        let manifests = try GitRepository.openMirror(at: mirrors + "/manifests.git")

        // What a fetch killed between taking its locks and renaming them leaves.
        try "two".write(toFile: source + "/file", atomically: true, encoding: .utf8)
        try dir.git(["-C", source, "commit", "-q", "-am", "two"])
        let stale = [mirror.path + "/refs/heads/main.lock", mirror.path + "/packed-refs.lock", manifests.path + "/config.lock"]
        for path in stale { try "0000000000000000000000000000000000000000\n".write(toFile: path, atomically: false, encoding: .utf8) }
        // A lock behind a symlink in refs/ is not the mirror's: it stays.
        try FileManager.default.createDirectory(atPath: dir.path + "/outside", withIntermediateDirectories: true)
        try "keep".write(toFile: dir.path + "/outside/keep.lock", atomically: false, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: mirror.path + "/refs/elsewhere", withDestinationPath: dir.path + "/outside")

        #expect {
            try mirror.sync(from: source, refspecs: SourceMirrors.refspecs, access: .anonymous)
        } throws: { error in
            "\(error)".contains("refs/heads/main.lock")
        }
        #expect(StaleGitLocks.remove(mirrors: mirrors) == stale.sorted())
        #expect(try mirror.sync(from: source, refspecs: SourceMirrors.refspecs, access: .anonymous) == .fetched)
        #expect(try mirror.referenceTarget("refs/heads/main") == dir.gitOutput(["-C", source, "rev-parse", "HEAD"]))
        #expect(FileManager.default.fileExists(atPath: dir.path + "/outside/keep.lock"))
        #expect(StaleGitLocks.remove(mirrors: mirrors).isEmpty)
    }
}
