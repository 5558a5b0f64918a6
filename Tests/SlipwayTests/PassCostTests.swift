import Foundation
import Testing
@testable import Slipway
@testable import SlipwayCore

/// Issue 20, the no-change pass: what it keeps between passes (the state, release records, a
/// local source's refs read directly) must never hide a change.
@Suite(.timeLimit(.minutes(2))) struct PassCostTests {
    /// One reconciler across passes, as in a running agent: a pass with nothing to do rewrites
    /// only the pass's timestamps (state.durable.json keeps the last fsynced state), and a moved
    /// branch still deploys, found by the direct read of the local source's refs.
    @Test func aRunningAgentsPassesSkipOnlyWhatDidNotChange() async throws {
        let host = try PassSandbox()
        try host.commitSource(["index.html": "v1"])
        try host.commitManifest()
        let reconciler = host.reconciler()
        #expect(await reconciler.pass().converged)
        let first = try #require(host.current())
        let statePath = host.stateDir + "/state.json", durablePath = host.stateDir + "/state.durable.json"
        // The deploy's state was fsynced (and linked as the durable copy) right after the app;
        // the pass's closing write moved only lastPass.
        #expect(differInLastPassOnly(durablePath, statePath))
        #expect(decode(durablePath)?.apps["demo"]?.lastDeploy?.release?.description == first.replacingOccurrences(of: "releases/", with: ""))

        #expect(await reconciler.pass().converged)
        #expect(host.current() == first)
        #expect(inode(statePath) != inode(durablePath), "a pass that moved only lastPass leaves the durable copy alone")
        #expect(differInLastPassOnly(durablePath, statePath))

        try host.commitSource(["index.html": "v2"])
        #expect(await reconciler.pass().converged)
        let second = try #require(host.current())
        #expect(second != first, "the moved branch deployed")
        #expect(try String(contentsOfFile: host.appsRoot + "/demo/" + second + "/frontend/index.html", encoding: .utf8) == "v2")
        #expect(differInLastPassOnly(durablePath, statePath))
        #expect(decode(durablePath)?.apps["demo"]?.lastDeploy?.release?.description == second.replacingOccurrences(of: "releases/", with: ""))
    }

    @Test func theStateIsReadAgainWhenAnotherWriterReplacedItAndFromTheDurableCopyWhenTorn() throws {
        let dir = TempDir()
        let recall = StateRecall(stateDir: dir.path)
        var state = AgentState()
        state.manifestsCommit = "a"
        try recall.save(state)
        #expect(recall.load() == state)

        var other = state
        other.manifestsCommit = "b"
        try StateFile(stateDir: dir.path).save(other)
        #expect(recall.load() == other, "a file another writer put in place is read, not the remembered state")

        // A write that moves only lastPass is not fsynced; if a crash tears it, the durable copy holds.
        try recall.save(state)
        var later = state
        later.lastPass = .init(startedAt: UTCTime(millisecondsSinceEpoch: 1000), finishedAt: UTCTime(millisecondsSinceEpoch: 2000), converged: true)
        try recall.save(later)
        #expect(inode(dir.path + "/state.json") != inode(dir.path + "/state.durable.json"))
        #expect(FileManager.default.createFile(atPath: dir.path + "/state.json", contents: Data()))
        #expect(StateRecall(stateDir: dir.path).load() == state)
    }

    /// A new process (`agent --once`) whose pass moves only `lastPass` writes without an fsync,
    /// whether its state file is the durable copy or a later timestamps-only write; a pass that
    /// changes more makes the durable copy again.
    @Test func aNewProcessMovingOnlyTheTimestampsSkipsTheFsync() throws {
        let dir = TempDir()
        var state = AgentState()
        state.manifestsCommit = "a"
        try StateRecall(stateDir: dir.path).save(state)
        let durable = inode(dir.path + "/state.durable.json")
        #expect(inode(dir.path + "/state.json") == durable, "a first save is durable")
        for ms in [1000, 2000, 3000] as [Int64] {
            let recall = StateRecall(stateDir: dir.path)
            var next = recall.load()
            next.lastPass = .init(startedAt: UTCTime(millisecondsSinceEpoch: ms), finishedAt: UTCTime(millisecondsSinceEpoch: ms + 5), converged: true)
            try recall.save(next)
            #expect(inode(dir.path + "/state.json") != durable, "a timestamps-only save renames a new file in")
            #expect(inode(dir.path + "/state.durable.json") == durable, "and leaves the durable copy alone (no fsync path)")
        }
        let recall = StateRecall(stateDir: dir.path)
        var changed = recall.load()
        changed.manifestsCommit = "b"
        try recall.save(changed)
        #expect(inode(dir.path + "/state.json") == inode(dir.path + "/state.durable.json"), "a real change is made durable")
        #expect(StateRecall(stateDir: dir.path).load() == changed)
    }

    /// The state's bytes put together from the cached encoding and a new lastPass are exactly
    /// what encoding it whole writes, whichever top-level keys are there.
    @Test func theSplicedStateIsByteForByteTheEncodedOne() throws {
        let dir = TempDir()
        let recall = StateRecall(stateDir: dir.path)
        var state = AgentState()
        #expect(try recall.encode(state) == Array(try JSONFiles.encode(state)))
        state.lastPass = .init(startedAt: UTCTime(millisecondsSinceEpoch: 1000), finishedAt: UTCTime(millisecondsSinceEpoch: 2500),
                               converged: false, error: "a \"quoted\" }, {\n\"lastPass\" : and a newline")
        #expect(try recall.encode(state) == Array(try JSONFiles.encode(state)), "only apps, lastPass last")
        var app = AppStatus(condition: .converged)
        app.message = "line one\n  \"trust\" : line two"
        state.apps = ["demo": app, "zeta": AppStatus(condition: .failed)]
        #expect(try recall.encode(state) == Array(try JSONFiles.encode(state)))
        state.manifestsCommit = String(repeating: "c", count: 40)
        state.manifestsFetchError = "unreachable"
        state.allowedRemovals = "abc"
        state.trust = TrustStatus(verified: true)
        state.heldRemoval = .init(commit: "d", removed: 2, of: 3)
        #expect(try recall.encode(state) == Array(try JSONFiles.encode(state)), "every top-level key")
        for ms in [3000, 4000] as [Int64] {
            state.lastPass?.finishedAt = UTCTime(millisecondsSinceEpoch: ms)
            state.lastPass?.converged.toggle()
            #expect(try recall.encode(state) == Array(try JSONFiles.encode(state)), "the cached rest with a new lastPass")
        }
        state.lastPass = nil
        #expect(try recall.encode(state) == Array(try JSONFiles.encode(state)))
    }

    @Test func aReplacedReleaseRecordIsReadAgain() throws {
        let dir = TempDir()
        let path = dir.path + "/release.json"
        func record(_ fingerprint: String) -> ReleaseRecord {
            ReleaseRecord(app: AppName("demo")!, id: ReleaseID("20261201T120000Z-abcdef0")!,
                          source: .init(repo: "/r", ref: "main", sha: String(repeating: "a", count: 40)),
                          manifest: .init(commit: String(repeating: "b", count: 40), path: "m.yaml"),
                          fingerprint: fingerprint, createdAt: UTCTime(millisecondsSinceEpoch: 0), stages: [], result: .succeeded)
        }
        try FileOps.writeAtomically(Array(try JSONFiles.encode(record("one"))), to: path)
        #expect(ReleaseRecordCache.record(at: path)?.fingerprint == "one")
        #expect(ReleaseRecordCache.record(at: path)?.fingerprint == "one")
        // Same size, written within the same clock tick: another inode all the same.
        try FileOps.writeAtomically(Array(try JSONFiles.encode(record("two"))), to: path)
        #expect(ReleaseRecordCache.record(at: path)?.fingerprint == "two")
        unlink(path)
        #expect(ReleaseRecordCache.record(at: path) == nil)
    }

    /// The direct read of a local source's refs names exactly what libgit2's transport lists
    /// (annotated tags by their tag object, symbolic refs resolved); a moved tip differs.
    @Test func aLocalSourcesRefsReadDirectlyMatchTheTransportsListing() throws {
        let dir = TempDir()
        let repo = dir.path + "/src"
        try dir.git(["init", "-q", "-b", "main", repo])
        try "v1".write(toFile: repo + "/a", atomically: true, encoding: .utf8)
        try dir.git(["-C", repo, "add", "-A"])
        try dir.git(["-C", repo, "commit", "-q", "-m", "one"])
        try dir.git(["-C", repo, "tag", "-a", "-m", "annotated", "v1"])
        try dir.git(["-C", repo, "tag", "light"])
        try dir.git(["-C", repo, "branch", "feature/x"])
        try dir.git(["-C", repo, "symbolic-ref", "refs/heads/alias", "refs/heads/main"])
        let transport = try GitRepository.listRemote(repo, access: .anonymous).filter { GitRepository.covered($0.key, by: SourceMirrors.refspecs) }
        // What LocalFetch.sync compares with the mirror's refs.
        let direct = try #require(LocalListing.withRepository(at: repo) {
            LocalListing.coveredRefs($0, under: SourceMirrors.refspecs).map(LocalListing.ids)
        } ?? nil)
        #expect(direct == transport)
        #expect(direct.count == 5)

        let mirror = try GitRepository.openMirror(at: dir.path + "/mirror.git")
        #expect(try mirror.sync(from: repo, refspecs: SourceMirrors.refspecs, access: .anonymous) == .fetched)
        #expect(try mirror.sync(from: repo, refspecs: SourceMirrors.refspecs, access: .anonymous) == .unchanged)
        #expect(LocalFetch.sync(mirror, from: "file://" + repo, refspecs: SourceMirrors.refspecs) == .unchanged, "file:// read the same way")
        #expect(LocalFetch.sync(mirror, from: "ssh://git@127.0.0.1/x.git", refspecs: SourceMirrors.refspecs) == nil)
        #expect(LocalFetch.sync(mirror, from: dir.path + "/missing", refspecs: SourceMirrors.refspecs) == nil)
        try "v2".write(toFile: repo + "/a", atomically: true, encoding: .utf8)
        try dir.git(["-C", repo, "commit", "-q", "-am", "two"])
        #expect(try mirror.sync(from: repo, refspecs: SourceMirrors.refspecs, access: .anonymous) == .fetched)
        let tip = try dir.gitOutput(["-C", repo, "rev-parse", "HEAD"]).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try mirror.referenceTarget("refs/heads/main") == tip)
        #expect(try mirror.referenceTarget("refs/heads/alias") == tip)
        #expect(try mirror.referenceTarget("refs/tags/v1") != nil, "an annotated tag peels to its commit")
        #expect(try mirror.referenceTarget("refs/heads/none") == nil)
    }

    /// Issue 16 holds for the prefetch too: a source outside git.local_roots is never read,
    /// not even into a mirror, while the pass syncs the others side by side.
    @Test func thePrefetchReadsNoSourceOutsideTheLocalRoots() async throws {
        let host = try PassSandbox()
        let outside = TempDir()
        let foreign = outside.path + "/foreign"
        try outside.git(["init", "-q", "-b", "main", foreign])
        try "secret".write(toFile: foreign + "/index.html", atomically: true, encoding: .utf8)
        try outside.git(["-C", foreign, "add", "-A"])
        try outside.git(["-C", foreign, "commit", "-q", "-m", "x"])
        try host.commitSource(["index.html": "v1"])
        try host.commitManifest()
        try "app: other\nsource: {repo: \(foreign), ref: main}\nfrontend: {output: .}\n"
            .write(toFile: host.manifests + "/manifests/other.yaml", atomically: true, encoding: .utf8)
        try host.commitManifest()
        let result = await host.reconciler().pass()
        #expect(host.current() != nil)
        #expect(result.unsettled.map(\.app.value) == ["other"])
        #expect(host.status("other")?.condition == .invalid)
        #expect(!FileManager.default.fileExists(atPath: SourceMirrors(stateDir: host.stateDir).mirrorPath(for: foreign)))
    }

    func differInLastPassOnly(_ a: String, _ b: String) -> Bool {
        guard var one = decode(a), let two = decode(b), one.lastPass != two.lastPass else { return false }
        one.lastPass = two.lastPass
        return one == two
    }

    func inode(_ path: String) -> UInt64? {
        var info = stat()
        return lstat(path, &info) == 0 ? UInt64(info.st_ino) : nil
    }

    func decode(_ path: String) -> AgentState? {
        FileManager.default.contents(atPath: path).flatMap { try? JSONDecoder().decode(AgentState.self, from: $0) }
    }
}
