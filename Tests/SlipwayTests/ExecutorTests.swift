import Foundation
import Testing
@testable import Slipway
@testable import SlipwayCore

/// A temp dir removed at the end of each test.
final class TempDir {
    let path: String

    /// `inMemory`: under /dev/shm (tmpfs) where there is one, for tests that make thousands of
    /// files (on this machine's ext4, 3,000 creates take 3 s; on tmpfs 0.05 s).
    init(inMemory: Bool = false) {
        let parent = inMemory && access("/dev/shm", W_OK) == 0 ? "/dev/shm/" : NSTemporaryDirectory()
        var template = Array((parent + "slipway-unit-XXXXXX").utf8CString)
        path = String(cString: mkdtemp(&template)!)
    }

    deinit {
        try? SafeTree.remove(path)
    }

    func git(_ args: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/git")
        process.arguments = ["-c", "user.name=t", "-c", "user.email=t@t.invalid", "-c", "commit.gpgsign=false"] + args
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw SystemError("git \(args.joined(separator: " "))", path: path, code: EINVAL) }
    }

    func gitOutput(_ args: [String]) throws -> String {
        let process = Process()
        let pipe = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/git")
        process.arguments = args
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A source repo with a file, an executable, a symlink inside and one pointing outside the tree.
    func makeSourceRepo() throws -> (repo: String, sha: String) {
        let repo = path + "/src"
        try git(["init", "-q", "-b", "main", repo])
        try FileManager.default.createDirectory(atPath: repo + "/dir", withIntermediateDirectories: true)
        try "hello".write(toFile: repo + "/dir/file.txt", atomically: true, encoding: .utf8)
        try "#!/bin/sh\n".write(toFile: repo + "/run.sh", atomically: true, encoding: .utf8)
        chmod(repo + "/run.sh", 0o755)
        symlink("dir/file.txt", repo + "/inside")
        symlink("/etc", repo + "/outside")
        try git(["-C", repo, "add", "-A"])
        try git(["-C", repo, "commit", "-q", "-m", "one"])
        try git(["-C", repo, "tag", "v1"])
        return (repo, try gitOutput(["-C", repo, "rev-parse", "HEAD"]))
    }
}

@Suite struct GitTests {
    @Test func mirrorsFetchIncrementallyAndResolveRefs() throws {
        let dir = TempDir()
        let (repo, sha) = try dir.makeSourceRepo()
        let mirrors = SourceMirrors(stateDir: dir.path + "/state")
        let main = Manifest.Source(repo: repo, ref: .name("main"))
        #expect(try mirrors.resolve(main).get() == sha)
        #expect(try mirrors.resolve(.init(repo: repo, ref: .name("v1"))).get() == sha)
        #expect(try mirrors.resolve(.init(repo: repo, ref: .commit(sha))).get() == sha)
        if case .failure(let problem) = mirrors.resolve(.init(repo: repo, ref: .name("nope"))) {
            #expect(problem.description.contains("ref 'nope' is neither a tag nor a branch"))
        } else {
            Issue.record("an unknown ref resolved")
        }

        // A new commit is seen on the next pass (one fetch per repo per pass).
        try "two".write(toFile: repo + "/dir/file.txt", atomically: true, encoding: .utf8)
        try dir.git(["-C", repo, "commit", "-q", "-am", "two"])
        let next = try dir.gitOutput(["-C", repo, "rev-parse", "HEAD"])
        #expect(try mirrors.resolve(main).get() == sha)
        mirrors.startPass()
        #expect(try mirrors.resolve(main).get() == next)
    }

    @Test func anUnreachableRepoIsAnErrorNotACrash() throws {
        let dir = TempDir()
        let mirrors = SourceMirrors(stateDir: dir.path + "/state")
        guard case .failure(let problem) = mirrors.resolve(.init(repo: dir.path + "/missing.git", ref: .name("main"))) else {
            Issue.record("resolved a missing repo")
            return
        }
        #expect(problem.description.contains("fetching from"))
    }

    @Test func exportKeepsModesAndSymlinksAndNeverFollowsThem() throws {
        let dir = TempDir()
        let (repo, sha) = try dir.makeSourceRepo()
        let mirror = try SourceMirrors(stateDir: dir.path + "/state").open(repo)
        try mirror.fetch(from: repo, refspecs: SourceMirrors.refspecs)
        let exporter = TreeExporter(repository: mirror, store: ObjectStore(root: dir.path + "/objects"))
        let summary = try exporter.export(commit: sha, into: dir.path + "/out")
        #expect(summary.files == 2)
        #expect(summary.symlinks == 2)
        #expect(FileOps.readLink(dir.path + "/out/outside") == "/etc")
        #expect(FileOps.readLink(dir.path + "/out/inside") == "dir/file.txt")
        #expect(FileManager.default.isExecutableFile(atPath: dir.path + "/out/run.sh"))
        #expect(try String(contentsOfFile: dir.path + "/out/dir/file.txt", encoding: .utf8) == "hello")

        // A second export of the same commit writes nothing: every file is a link to the stored object.
        let again = try exporter.export(commit: sha, into: dir.path + "/out2")
        #expect(again.objects.written == 0)
        #expect(again.objects.linked == 2)
    }

    @Test func readsManifestFilesFromACommitWithoutACheckout() throws {
        let dir = TempDir()
        let repo = dir.path + "/m"
        try dir.git(["init", "-q", "-b", "main", repo])
        try FileManager.default.createDirectory(atPath: repo + "/manifests/team", withIntermediateDirectories: true)
        try "app: a\n".write(toFile: repo + "/manifests/a.yaml", atomically: true, encoding: .utf8)
        try "app: b\n".write(toFile: repo + "/manifests/team/b.yml", atomically: true, encoding: .utf8)
        try "no".write(toFile: repo + "/manifests/README.md", atomically: true, encoding: .utf8)
        try dir.git(["-C", repo, "add", "-A"])
        try dir.git(["-C", repo, "commit", "-q", "-m", "m"])
        let mirror = try GitRepository.openMirror(at: dir.path + "/mirror.git")
        try mirror.fetch(from: repo, refspecs: ["+refs/heads/main:refs/heads/main"])
        let sha = try #require(try mirror.referenceTarget("refs/heads/main"))
        let files = try mirror.files(atCommit: sha, under: "manifests", matching: ManifestSet.isManifestPath)
        #expect(files.map(\.path).sorted() == ["manifests/a.yaml", "manifests/team/b.yml"])
        #expect(try mirror.files(atCommit: sha, under: "elsewhere", matching: { _ in true }).isEmpty)
    }
}

@Suite struct ReleaseStoreTests {
    func store(_ dir: TempDir) -> ReleaseStore {
        ReleaseStore(layout: AppLayout(appsRoot: dir.path, app: AppName("demo")!))
    }

    @Test func switchingReplacesTheLinkAtomicallyAndRefusesMissingReleases() throws {
        let dir = TempDir()
        let store = store(dir)
        let a = ReleaseID("20261125T120000Z-aaaaaaa")!, b = ReleaseID("20261125T130000Z-bbbbbbb")!
        for id in [a, b] { try FileOps.makeDirectories(store.layout.release(id)) }
        try store.switchCurrent(to: a)
        #expect(store.current() == a)
        try store.switchCurrent(to: b)
        #expect(store.current() == b)
        #expect(FileOps.readLink(store.layout.current) == "releases/\(b)")
        #expect(throws: SystemError.self) { try store.switchCurrent(to: ReleaseID("20261125T140000Z-ccccccc")!) }
        #expect(store.current() == b)
        // No temp link is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.layout.root).filter { $0.hasPrefix(".current") }.isEmpty)
    }

    @Test func pruneNeverRemovesCurrentAndCleanupRemovesLeftovers() throws {
        let dir = TempDir()
        let store = store(dir)
        let a = ReleaseID("20261125T120000Z-aaaaaaa")!, b = ReleaseID("20261125T130000Z-bbbbbbb")!
        for id in [a, b] { try FileOps.makeDirectories(store.layout.release(id) + "/backend") }
        // A link out of the release must not be followed when the release is deleted.
        let outside = dir.path + "/precious"
        try FileOps.makeDirectories(outside)
        try Data("x".utf8).write(to: URL(fileURLWithPath: outside + "/keep.txt"))
        symlink(outside, store.layout.release(a) + "/backend/link")
        try store.switchCurrent(to: b)
        try store.prune([a, b])
        #expect(store.releaseIDs() == [b])
        try store.emptyTrash()
        #expect(!FileOps.exists(store.layout.trash))
        #expect(FileManager.default.fileExists(atPath: outside + "/keep.txt"))

        try FileOps.makeDirectories(store.layout.staging + "/x/src")
        symlink("releases/nowhere", store.layout.root + "/.current.tmp-1")
        try store.cleanUpInterrupted()
        #expect(!FileOps.exists(store.layout.staging))
        #expect(!FileOps.exists(store.layout.root + "/.current.tmp-1"))
    }
}

@Suite struct ChildProcessTests {
    @Test func aTimeoutStopsTheWholeProcessGroup() async throws {
        let dir = TempDir()
        let log = try BuildLog.create(at: dir.path + "/build.log")
        defer { log.close() }
        let marker = dir.path + "/grandchild-alive"
        let child = try ChildProcess.spawnShell("(sleep 120; touch \(marker)) & sleep 120", in: dir.path,
                                                environment: ["PATH": "/usr/bin:/bin"], outputFD: log.fd)
        let clock = ContinuousClock()
        let started = clock.now
        let termination = await child.wait(timeout: .milliseconds(300), grace: .seconds(2))
        #expect(termination == .timedOut)
        // Far less than the 120 s the commands would sleep. The bound is loose on purpose: the
        // end-to-end tests run beside this one and block the 2 cores' cooperative threads.
        #expect(clock.now - started < .seconds(110))
        // The backgrounded grandchild was in the same group and is gone too (zombies awaiting
        // init's reaping do not count: they run nothing).
        #expect(Self.liveProcesses(inGroup: child.pid).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    /// Pids of processes in group `pgid` that are not zombies, read from /proc.
    static func liveProcesses(inGroup pgid: pid_t) -> [pid_t] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { name -> pid_t? in
            guard let pid = pid_t(name), let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return nil }
            // Fields after "(comm)": state ppid pgrp …
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 2, fields[0] != "Z", pid_t(fields[2]) == pgid else { return nil }
            return pid
        }
    }

    @Test func exitStatusAndOutputAreCaptured() async throws {
        let dir = TempDir()
        let log = try BuildLog.create(at: dir.path + "/build.log")
        let child = try ChildProcess.spawnShell("echo out; echo err >&2; exit 7", in: dir.path, environment: [:], outputFD: log.fd)
        #expect(await child.wait(timeout: .seconds(10)) == .exited(7))
        log.close()
        #expect(BuildLog.tail(of: dir.path + "/build.log") == "out\nerr")
    }

    @Test func theEnvironmentIsExactlyWhatWasGiven() async throws {
        let dir = TempDir()
        let log = try BuildLog.create(at: dir.path + "/build.log")
        setenv("SLIPWAY_TEST_LEAK", "secret", 1)
        let child = try ChildProcess.spawnShell("env | sort", in: dir.path, environment: ["ONLY": "this"], outputFD: log.fd)
        #expect(await child.wait(timeout: .seconds(10)) == .exited(0))
        log.close()
        let output = BuildLog.tail(of: dir.path + "/build.log")
        #expect(output.contains("ONLY=this"))
        #expect(!output.contains("SLIPWAY_TEST_LEAK"))
    }
}

@Suite struct AgentLockTests {
    @Test func aSecondHolderIsRefusedWithThePID() throws {
        let dir = TempDir()
        var lock: AgentLock? = try AgentLock.acquire(stateDir: dir.path)
        #expect(AgentLock.holder(stateDir: dir.path) == getpid())
        do {
            _ = try AgentLock.acquire(stateDir: dir.path)
            Issue.record("a second lock was granted")
        } catch let held as AgentLock.Held {
            #expect(held.pid == getpid())
            #expect(held.description.contains("pid \(getpid())"))
        }
        withExtendedLifetime(lock) {}
        lock = nil
        #expect(AgentLock.holder(stateDir: dir.path) == nil)
        #expect(throws: Never.self) { _ = try AgentLock.acquire(stateDir: dir.path) }
    }
}
