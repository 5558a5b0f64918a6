import Foundation
import Testing
@testable import Slipway
@testable import SlipwayCore

/// The per-app build home: made once and given to the app's account, kept, and cleared without
/// ever following a link the account planted in it.
@Suite struct BuildHomeTests {
    static let account = "nobody"

    @Test func theHomeIsTheAccountsAndItsCachesLiveInside() throws {
        let dir = TempDir()
        let home = BuildHome(appsRoot: dir.path, app: AppName("web")!)
        #expect(home.path == dir.path + "/web/.slipway/home")
        for name in ["XDG_CACHE_HOME", "npm_config_cache", "PIP_CACHE_DIR", "GOCACHE", "GOMODCACHE"] {
            #expect(home.environment[name]?.hasPrefix(home.path + "/") == true, "\(name)")
        }
        #expect(home.environment["HOME"] == home.path)
        let account = geteuid() == 0 ? try AppAccount.lookup(Self.account) : nil
        try home.prepare(for: account)
        try home.prepare(for: account)  // again: harmless
        var info = stat()
        #expect(lstat(home.path, &info) == 0)
        #expect(info.st_mode & 0o7777 == 0o700)
        #expect(info.st_uid == (account?.uid ?? geteuid()))
        // The parent stays the agent's: the account cannot swap the home for a link.
        #expect(lstat(dir.path + "/web/.slipway", &info) == 0 && info.st_uid == geteuid() && info.st_mode & 0o022 == 0)
    }

    @Test func aHomeThatIsALinkIsRefusedNotFollowed() throws {
        let dir = TempDir()
        let home = BuildHome(appsRoot: dir.path, app: AppName("web")!)
        let elsewhere = dir.path + "/elsewhere"
        try FileOps.makeDirectories(elsewhere, mode: 0o755)
        try FileOps.makeDirectories(dir.path + "/web/.slipway")
        #expect(symlink(elsewhere, home.path) == 0)
        #expect(throws: SystemError.self) { try home.prepare(for: geteuid() == 0 ? try AppAccount.lookup(Self.account) : nil) }
        var info = stat()
        #expect(stat(elsewhere, &info) == 0 && info.st_uid == geteuid() && info.st_mode & 0o7777 == 0o755)
    }

    @Test func clearingNeverFollowsALinkTheAppPlanted() throws {
        let dir = TempDir()
        let home = BuildHome(appsRoot: dir.path, app: AppName("web")!)
        try home.prepare(for: nil)
        // Outside the home: what a root agent must never touch.
        let victim = dir.path + "/victim"
        try FileOps.makeDirectories(victim + "/sub")
        try Array("precious".utf8).write(to: victim + "/file")
        try Array("deep".utf8).write(to: victim + "/sub/file")
        // Inside: caches, a read-only tree (as Go's module cache), links to the victim.
        try FileOps.makeDirectories(home.path + "/go/pkg/mod/example.com/x@v1")
        try Array("x".utf8).write(to: home.path + "/go/pkg/mod/example.com/x@v1/x.go")
        chmod(home.path + "/go/pkg/mod/example.com/x@v1", 0o555)
        chmod(home.path + "/go/pkg/mod/example.com", 0o555)
        #expect(symlink(victim, home.path + "/.cache") == 0)
        #expect(symlink(victim + "/file", home.path + "/file-link") == 0)
        try FileOps.makeDirectories(home.path + "/a")
        #expect(symlink(victim + "/sub", home.path + "/a/sub") == 0)
        #expect(try home.clear())
        #expect(FileOps.lstatMode(home.path) == nil)
        #expect(FileOps.readFile(victim + "/file") == Array("precious".utf8))
        #expect(FileOps.readFile(victim + "/sub/file") == Array("deep".utf8))
        #expect((try FileManager.default.contentsOfDirectory(atPath: dir.path + "/web/.slipway/home-trash")).isEmpty)
        #expect(try home.clear() == false)
        try home.prepare(for: nil)
        #expect(FileOps.isDirectory(home.path))
    }
}

private extension Array where Element == UInt8 {
    func write(to path: String) throws {
        try FileOps.writeAtomically(self, to: path)
    }
}
