import Foundation
import Synchronization
import Testing
@testable import Slipway
@testable import SlipwayCore

/// Issue 20: the parallel export, the per-pass prefetch of mirrors, the local clone of a new
/// mirror, the emptying of the trash and the workers' lower start priority.
@Suite struct PassSpeedTests {
    /// A repo of `count` files in folders of 50, every 7th executable, plus two symlinks.
    func makeWideRepo(_ dir: TempDir, count: Int) throws -> (repo: String, sha: String) {
        let repo = dir.path + "/wide"
        try dir.git(["init", "-q", "-b", "main", repo])
        for index in 0..<count {
            let folder = repo + "/pkg\(index / 50)"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try "file \(index)\n".write(toFile: folder + "/f\(index).js", atomically: true, encoding: .utf8)
            if index % 7 == 0 { chmod(folder + "/f\(index).js", 0o755) }
        }
        symlink("pkg0/f1.js", repo + "/link")
        symlink("/etc", repo + "/outside")
        try dir.git(["-C", repo, "add", "-A"])
        try dir.git(["-C", repo, "commit", "-q", "-m", "wide"])
        return (repo, try dir.gitOutput(["-C", repo, "rev-parse", "HEAD"]))
    }

    @Test func theParallelExportWritesExactlyTheTreeAndLinksWhatDidNotChange() throws {
        let dir = TempDir()
        let count = 600
        let (repo, sha) = try makeWideRepo(dir, count: count)
        let mirror = try SourceMirrors(stateDir: dir.path + "/state").open(repo)
        try mirror.fetch(from: repo, refspecs: SourceMirrors.refspecs)
        var exporter = TreeExporter(repository: mirror, store: ObjectStore(root: dir.path + "/objects"))
        exporter.threads = 4
        let cold = try exporter.export(commit: sha, into: dir.path + "/one")
        #expect(cold.files == count)
        #expect(cold.objects.written == count)
        #expect(cold.symlinks == 2)
        #expect(cold.directories == count / 50)
        for index in 0..<count {
            let path = "/pkg\(index / 50)/f\(index).js"
            #expect(try String(contentsOfFile: dir.path + "/one" + path, encoding: .utf8) == "file \(index)\n")
            var info = stat()
            lstat(dir.path + "/one" + path, &info)
            #expect(info.st_mode & 0o777 == (index % 7 == 0 ? 0o555 : 0o444), "mode of \(path)")
            #expect(info.st_nlink == 2, "\(path) is linked into the store")
        }
        #expect(FileOps.readLink(dir.path + "/one/outside") == "/etc")

        try "changed\n".write(toFile: repo + "/pkg3/f150.js", atomically: true, encoding: .utf8)
        try dir.git(["-C", repo, "commit", "-q", "-am", "one file"])
        let next = try dir.gitOutput(["-C", repo, "rev-parse", "HEAD"])
        try mirror.fetch(from: repo, refspecs: SourceMirrors.refspecs)
        let warm = try exporter.export(commit: next, into: dir.path + "/two")
        #expect(warm.objects.written == 1)
        #expect(warm.objects.linked == count - 1)
        #expect(try String(contentsOfFile: dir.path + "/two/pkg3/f150.js", encoding: .utf8) == "changed\n")
        var first = stat(), second = stat()
        lstat(dir.path + "/one/pkg0/f1.js", &first)
        lstat(dir.path + "/two/pkg0/f1.js", &second)
        #expect(first.st_ino == second.st_ino)
    }

    @Test func aTreeWithABadNameIsRefusedWhateverTheThreads() throws {
        let dir = TempDir()
        let (repo, _) = try makeWideRepo(dir, count: 300)
        // A tree entry named ".git", as a crafted push can carry it (git mktree writes one).
        let blob = try dir.gitOutput(["-C", repo, "rev-parse", "HEAD:pkg0/f1.js"])
        let tree = try pipeInto(["-C", repo, "mktree"], "100644 blob \(blob)\t.git\n", dir)
        let commit = try dir.gitOutput(["-C", repo, "commit-tree", tree, "-m", "bad"])
        try dir.git(["-C", repo, "update-ref", "refs/heads/bad", commit])
        let mirror = try SourceMirrors(stateDir: dir.path + "/state").open(repo)
        try mirror.fetch(from: repo, refspecs: SourceMirrors.refspecs)
        #expect(throws: GitError.self) {
            try TreeExporter(repository: mirror, store: ObjectStore(root: dir.path + "/objects")).export(commit: commit, into: dir.path + "/out")
        }
        #expect(!FileOps.exists(dir.path + "/out/.git"))
    }

    func pipeInto(_ args: [String], _ input: String, _ dir: TempDir) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/git")
        process.arguments = args
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let data = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func thePrefetchReachesEveryRemoteOnceAndResolveFindsItsOutcome() throws {
        let dir = TempDir()
        var shas: [String] = []
        for name in ["a", "b", "c"] {
            let repo = dir.path + "/" + name
            try dir.git(["init", "-q", "-b", "main", repo])
            try name.write(toFile: repo + "/x", atomically: true, encoding: .utf8)
            try dir.git(["-C", repo, "add", "-A"])
            try dir.git(["-C", repo, "commit", "-q", "-m", name])
            shas.append(try dir.gitOutput(["-C", repo, "rev-parse", "HEAD"]))
        }
        let connections = Mutex<[String]>([])
        let access = RemoteAccess(git: GitConfig(), stateDir: dir.path + "/state", onConnected: { remote in
            connections.withLock { $0.append(remote.text) }
        })
        let mirrors = SourceMirrors(stateDir: dir.path + "/state", access: access)
        let sources: [Manifest.Source] = [
            .init(repo: dir.path + "/a", ref: .name("main")), .init(repo: dir.path + "/a", ref: .name("main")),
            .init(repo: dir.path + "/b", ref: .name("main")), .init(repo: dir.path + "/c", ref: .commit(shas[2])),
            .init(repo: dir.path + "/missing", ref: .name("main")),
        ]
        mirrors.startPass()
        mirrors.prefetch(sources)
        // a, b, c: the missing one fails its preflight before any connection.
        #expect(connections.withLock { $0.count } == 3)
        #expect(try mirrors.resolve(sources[0]).get() == shas[0])
        #expect(try mirrors.resolve(sources[1]).get() == shas[0])
        #expect(try mirrors.resolve(sources[2]).get() == shas[1])
        #expect(try mirrors.resolve(sources[3]).get() == shas[2])
        guard case .failure(let problem) = mirrors.resolve(sources[4]) else {
            Issue.record("a missing remote resolved")
            return
        }
        #expect(problem.description.contains("no repository at"))
        #expect(connections.withLock { $0.count } == 3, "resolve reached no remote again")

        // Next pass: c is pinned to a commit its mirror holds, so it is not asked at all.
        mirrors.startPass()
        mirrors.prefetch(sources)
        #expect(connections.withLock { $0.count } == 5)
        #expect(try mirrors.resolve(sources[3]).get() == shas[2])
    }

    @Test func aNewMirrorOfALocalPathIsLinkedNotPackedAndForeignObjectsAreCopied() throws {
        let dir = TempDir()
        let (repo, sha) = try makeWideRepo(dir, count: 20)
        try dir.git(["-C", repo, "gc", "-q"])
        try "loose\n".write(toFile: repo + "/loose.txt", atomically: true, encoding: .utf8)
        try dir.git(["-C", repo, "add", "-A"])
        try dir.git(["-C", repo, "commit", "-q", "-m", "loose"])
        try dir.git(["-C", repo, "tag", "v2"])
        let tip = try dir.gitOutput(["-C", repo, "rev-parse", "HEAD"])
        let looseBlob = try dir.gitOutput(["-C", repo, "rev-parse", "HEAD:loose.txt"])
        let loosePath = repo + "/.git/objects/" + looseBlob.prefix(2) + "/" + looseBlob.dropFirst(2)
        let foreign = geteuid() == 0
        // An object file someone else owns: linking it would let them change what the mirror holds.
        if foreign { #expect(chown(loosePath, 65534, 65534) == 0) }

        let mirrors = SourceMirrors(stateDir: dir.path + "/state")
        #expect(try mirrors.resolve(.init(repo: repo, ref: .name("main"))).get() == tip)
        #expect(try mirrors.resolve(.init(repo: repo, ref: .name("v2"))).get() == tip)
        #expect(try mirrors.resolve(.init(repo: repo, ref: .commit(sha))).get() == sha)
        let mirror = mirrors.mirrorPath(for: repo)
        let packs = try FileManager.default.contentsOfDirectory(atPath: repo + "/.git/objects/pack").filter { $0.hasSuffix(".pack") }
        #expect(packs.count == 1)
        var source = stat(), copy = stat()
        lstat(repo + "/.git/objects/pack/" + packs[0], &source)
        lstat(mirror + "/objects/pack/" + packs[0], &copy)
        #expect(source.st_ino == copy.st_ino, "the pack is hard-linked, as git clone --local does")
        lstat(loosePath, &source)
        #expect(lstat(mirror + "/objects/" + looseBlob.prefix(2) + "/" + looseBlob.dropFirst(2), &copy) == 0)
        if foreign {
            #expect(source.st_ino != copy.st_ino)
            #expect(copy.st_uid == geteuid())
            #expect(copy.st_mode & 0o222 == 0)
        }
        // Nothing moved: the sync after the clone downloads nothing.
        let repository = try GitRepository.openMirror(at: mirror)
        #expect(try repository.sync(from: repo, refspecs: SourceMirrors.refspecs, access: .anonymous) == .unchanged)
        let exported = try TreeExporter(repository: repository, store: ObjectStore(root: dir.path + "/objects"))
            .export(commit: tip, into: dir.path + "/out")
        #expect(exported.files == 21)
    }

    @Test func theTrashIsEmptiedWithoutFollowingALinkOut() throws {
        let dir = TempDir()
        let outside = dir.path + "/outside"
        try FileManager.default.createDirectory(atPath: outside + "/keep", withIntermediateDirectories: true)
        try "precious".write(toFile: outside + "/keep/file", atomically: true, encoding: .utf8)
        let trash = dir.path + "/trash"
        for release in ["r1", "r2"] {
            for folder in 0..<40 {
                let path = "\(trash)/\(release)/backend/pkg\(folder)/deeper"
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
                try "x".write(toFile: path + "/../f.js", atomically: true, encoding: .utf8)
                try "y".write(toFile: path + "/g.js", atomically: true, encoding: .utf8)
            }
            symlink(outside, "\(trash)/\(release)/backend/out")
            symlink(outside + "/keep", "\(trash)/\(release)/backend/pkg0/deeper/in")
        }
        try TrashRemoval.remove(trash, threads: 4)
        #expect(!FileOps.exists(trash))
        #expect(try String(contentsOfFile: outside + "/keep/file", encoding: .utf8) == "precious")
        try TrashRemoval.remove(trash, threads: 4)  // gone already: fine
    }

    @Test func aWorkerStartsAtNiceTenAndItsTreeReturnsToNormalOnReady() throws {
        let dir = TempDir()
        // The shell starts one child at its own nice (10) and one the app niced further itself.
        let script = "sleep 30 & nice -n 5 sleep 30 & echo ok > \(dir.path)/started; wait"
        let argv = StartPriority.wrap(["/bin/sh", "-c", script], containment: nil)
        #expect(argv.prefix(3) == ["/usr/bin/nice", "-n", "10"])
        let process = Process()
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        try process.run()
        defer {
            for pid in StartPriority.tree(of: process.processIdentifier).reversed() { kill(pid, SIGKILL) }
            process.waitUntilExit()
        }
        func nice(_ pid: pid_t) -> Int32 {
            errno = 0
            return getpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(pid))
        }
        // Until both children run: the second is a fork of the shell (nice 10) until `nice -n 5`
        // has applied its own (seen under load: [10, 10, 10] a moment after the fork).
        let deadline = Date().addingTimeInterval(10)
        var tree = StartPriority.tree(of: process.processIdentifier)
        while (tree.count < 3 || tree.map(nice).sorted() != [10, 10, 15]) && Date() < deadline {
            usleep(20_000)
            tree = StartPriority.tree(of: process.processIdentifier)
        }
        #expect(tree.count == 3)
        #expect(tree.map(nice).sorted() == [10, 10, 15])
        StartPriority.restore(pid: process.processIdentifier)
        #expect(tree.map(nice).sorted() == [0, 0, 15], "the app's own nice is its own")
    }
}
