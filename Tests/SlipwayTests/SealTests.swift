import Foundation
import Testing
@testable import Slipway
@testable import SlipwayCore

/// Taking a built tree back (`SafeTree.seal`) and checking its frontend links, as a build that
/// tries to keep a foothold would leave it.
@Suite(.enabled(if: geteuid() == 0, "needs root: the tree is the build account's"))
struct SealTests {
    @Test func modesHardLinksAndFIFOsAreTakenBack() throws {
        let account = try TestAccount()
        let dir = TempDir()
        chmod(dir.path, 0o755)
        let tree = dir.path + "/src"
        // What the build made, as its account: a 0777 dir, a setuid file, a setgid dir, a
        // hard link to a file its account owns outside the tree, a FIFO.
        try FileOps.makeDirectories(tree + "/open/deep")
        let outside = dir.path + "/theirs.txt"
        try FileOps.writeAtomically(Array("mine".utf8), to: outside, mode: 0o664)
        try FileOps.writeAtomically(Array("#!/bin/sh\n".utf8), to: tree + "/open/tool", mode: 0o755)
        link(outside, tree + "/open/linked.txt")
        mkfifo(tree + "/pipe", 0o666)
        for path in [tree, tree + "/open", tree + "/open/deep", tree + "/open/tool", outside, tree + "/pipe"] { chown(path, account.uid, account.gid) }
        chmod(outside, 0o664)
        chmod(tree + "/open", 0o777)
        chmod(tree + "/open/deep", 0o2775)
        chmod(tree + "/open/tool", 0o4755)

        let report = try SafeTree.seal(tree)
        #expect(report.copied == 1 && report.removed == 1)
        func status(_ path: String) -> stat { var info = stat(); lstat(path, &info); return info }
        #expect(status(tree + "/open").st_mode & 0o7777 == 0o755 && status(tree + "/open").st_uid == 0)
        #expect(status(tree + "/open/deep").st_mode & 0o7777 == 0o755)
        #expect(status(tree + "/open/tool").st_mode & 0o7777 == 0o755 && status(tree + "/open/tool").st_uid == 0)
        #expect(!FileOps.exists(tree + "/pipe"))
        // The hard link became the release's own copy; the account's file is as it was.
        #expect(status(outside).st_uid == account.uid && status(outside).st_mode & 0o7777 == 0o664 && status(outside).st_nlink == 1)
        #expect(status(tree + "/open/linked.txt").st_ino != status(outside).st_ino && status(tree + "/open/linked.txt").st_uid == 0)
        #expect(FileOps.readFile(tree + "/open/linked.txt") == Array("mine".utf8))

        // A worker (the account) cannot change what it runs.
        let writer = try account.start(["/bin/sh", "-c", "echo x > \(tree)/open/new; echo x >> \(tree)/open/tool; mkdir \(tree)/open/deep/d"])
        writer.waitUntilExit()
        #expect(!FileOps.exists(tree + "/open/new") && !FileOps.exists(tree + "/open/deep/d"))
        #expect(FileOps.readFile(tree + "/open/tool") == Array("#!/bin/sh\n".utf8))
    }

    @Test func frontendLinksOutsideAreRefusedInsideOnesBecomeFiles() throws {
        let dir = TempDir()
        let output = dir.path + "/dist"
        try FileOps.makeDirectories(output + "/assets")
        try FileOps.writeAtomically(Array("js".utf8), to: output + "/assets/app-3f2c1a9b.js")
        symlink("assets/app-3f2c1a9b.js", output + "/latest.js")
        try FrontendOutputLinks.settle(output: output, declared: RelativePath("dist")!)
        var info = stat()
        #expect(lstat(output + "/latest.js", &info) == 0 && info.st_mode & S_IFMT == S_IFREG)

        for (name, target) in [("passwd.txt", "/etc/passwd"), ("root", "/"), ("other", "../../other-app/shared/secret")] {
            symlink(target, output + "/" + name)
            do {
                try FrontendOutputLinks.settle(output: output, declared: RelativePath("dist")!)
                Issue.record("\(name) -> \(target) was accepted")
            } catch {
                #expect("\(error)".hasPrefix("frontend output 'dist/\(name)' links outside the release (to \(target))"), "\(error)")
            }
            unlink(output + "/" + name)
        }
        symlink("assets", output + "/static")
        #expect(throws: FrontendOutputLinks.Refused.self) { try FrontendOutputLinks.settle(output: output, declared: RelativePath("dist")!) }
    }
}
