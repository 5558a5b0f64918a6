import Foundation
import Testing
@testable import Slipway
@testable import SlipwayCore

/// A unix `backend.listen` in a directory the app's account can write (`shared/`): the agent
/// (root) gives the socket its group and mode after binding; an app that swaps the socket for a
/// symlink to a root-owned file must never get that file chowned or chmodded.
@Suite(.serialized, .enabled(if: geteuid() == 0, "needs root: an app account races the agent"), .timeLimit(.minutes(2)))
struct UnixListenerTests {
    static let attempts = 300

    final class Setup {
        let dir = TempDir()
        let account: TestAccount
        var appDirectory: String { dir.path + "/app" }
        var socketPath: String { appDirectory + "/shared/web.sock" }
        var victim: String { dir.path + "/victim" }

        init() throws {
            account = try TestAccount()
            chmod(dir.path, 0o755)
            try FileManager.default.createDirectory(atPath: appDirectory + "/shared", withIntermediateDirectories: true)
            chown(appDirectory + "/shared", account.uid, account.gid)
            try "root's\n".write(toFile: victim, atomically: true, encoding: .utf8)
            chmod(victim, 0o600)
        }

        var victimUntouched: Bool {
            var info = stat()
            return lstat(victim, &info) == 0 && info.st_uid == 0 && info.st_gid == 0 && info.st_mode & 0o7777 == 0o600
        }
    }

    @Test func aSymlinkPlantedAtTheSocketPathIsNeverFollowed() throws {
        let s = try Setup()
        symlink(s.victim, s.socketPath)
        #expect(throws: SystemError.self) {
            try ListeningSocket.bind(.unix(RelativePath("shared/web.sock")!), appDirectory: s.appDirectory, group: s.account.gid).close()
        }
        #expect(s.victimUntouched)
        #expect(FileOps.readLink(s.socketPath) == s.victim)

        // A stale socket (a crashed agent's) is replaced; the new one is root:<group> 0660.
        unlink(s.socketPath)
        let stale = try UnixSocket.bound(at: s.socketPath, type: SOCK_STREAM, what: "binding")
        close(stale)
        let socket = try ListeningSocket.bind(.unix(RelativePath("shared/web.sock")!), appDirectory: s.appDirectory, group: s.account.gid)
        var info = stat()
        #expect(lstat(s.socketPath, &info) == 0 && info.st_mode & S_IFMT == S_IFSOCK)
        #expect(info.st_uid == 0 && info.st_gid == s.account.gid && info.st_mode & 0o777 == 0o660)
        // Nothing is left of the private directory it was bound in.
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.appDirectory + "/shared") == ["web.sock"])
        socket.close()
        #expect(!FileManager.default.fileExists(atPath: s.socketPath))
    }

    @Test func aRacerSwappingTheSocketForASymlinkNeverReachesTheVictim() throws {
        let s = try Setup()
        let stop = s.dir.path + "/stop"
        let racer = try s.account.start(["/usr/bin/python3", "-c", """
            import os, stat, sys
            path, victim, stop = sys.argv[1:4]
            while not os.path.exists(stop):
                try:
                    if stat.S_ISSOCK(os.lstat(path).st_mode):
                        os.unlink(path); os.symlink(victim, path)
                except OSError:
                    pass
            """, s.socketPath, s.victim, stop])
        defer {
            _ = FileManager.default.createFile(atPath: stop, contents: nil)
            racer.waitUntilExit()
        }
        usleep(200_000)
        var swapped = 0
        for _ in 0..<Self.attempts {
            unlink(s.socketPath)
            guard let socket = try? ListeningSocket.bind(.unix(RelativePath("shared/web.sock")!), appDirectory: s.appDirectory, group: s.account.gid) else { continue }
            usleep(500)
            if FileOps.lstatMode(s.socketPath) == S_IFLNK { swapped += 1 }
            socket.close()
            #expect(s.victimUntouched)
            if !s.victimUntouched { break }
        }
        #expect(s.victimUntouched)
        #expect(swapped > 0, "the racer never swapped the socket: the test proved nothing")
    }
}
