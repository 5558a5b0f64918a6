import Foundation
import SlipwayCore

/// One app's releases on disk: reading them, publishing a staged one, switching `current`
/// atomically, pruning. Every change is a rename(2), so a crash at any point leaves either
/// the old state or the new one, never a half.
public struct ReleaseStore: Sendable {
    public let layout: AppLayout

    public init(layout: AppLayout) {
        self.layout = layout
    }

    public static let recordName = "release.json"

    // MARK: Reading

    /// Every published release, oldest first; unparseable entries are ignored.
    public func releaseIDs() -> [ReleaseID] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: layout.releases)) ?? []
        return names.compactMap(ReleaseID.init).filter { FileOps.isDirectory(layout.release($0)) }.sorted()
    }

    public func record(_ id: ReleaseID) -> ReleaseRecord? {
        ReleaseRecordCache.record(at: layout.release(id) + "/" + Self.recordName)
    }

    /// The release `current` points at, if it points at one.
    public func current() -> ReleaseID? {
        guard let target = FileOps.readLink(layout.current), target.hasPrefix("releases/") else { return nil }
        return ReleaseID(String(target.dropFirst("releases/".count)))
    }

    public func observe(memory: AppMemory) -> ObservedApp {
        let releases = releaseIDs().map { id -> ObservedRelease in
            let record = record(id)
            return ObservedRelease(id: id, fingerprint: record?.fingerprint, succeeded: record?.result == .succeeded,
                                   contracted: record?.contractedAt != nil)
        }
        return ObservedApp(releases: releases, current: current(), memory: memory)
    }

    // MARK: Staging and publishing

    /// Removes what a crashed or stopped deploy left: staging dirs (after killing their build
    /// processes), trash, temp links.
    /// `census`: the pass's one scan of marked processes (a fresh scan when nil).
    func cleanUpInterrupted(census: StaleBuilds.Census? = nil) throws {
        StaleBuilds.kill(under: layout.staging, census: census)
        try SafeTree.remove(layout.staging)
        try emptyTrash()
        for name in (try? FileManager.default.contentsOfDirectory(atPath: layout.root)) ?? [] where name.hasPrefix(".current.tmp") {
            unlink(layout.root + "/" + name)
        }
    }

    /// A fresh staging directory for a release being built; nothing in it is visible as a release.
    func makeStaging(for id: ReleaseID) throws -> String {
        let path = layout.staging + "/" + id.description
        try FileOps.makeDirectories(layout.staging)
        try SafeTree.remove(path)
        try FileOps.makeDirectory(path)
        return path
    }

    /// Makes a root-owned directory readable only by the agent and `account`'s group (the app's
    /// build and workers), so another app's account cannot read the app's tree; also closes the
    /// agent's own `.slipway/` to listing (nginx still traverses it to the frontend archive)
    /// and its objects to everyone but root (releases reach them through their own links).
    func restrict(_ path: String, to account: AppAccount?) throws {
        guard let account, geteuid() == 0 else { return }
        let directory = try DirectoryHandle.open(path)
        try directory.set(owner: (0, account.gid), mode: 0o750)
        chmod(layout.internalDir, 0o711)
        if FileOps.isDirectory(layout.objects) { chmod(layout.objects, 0o700) }
    }

    /// `shared/`: the app's own account owns it (0750), so its workers write there and other
    /// apps' accounts cannot read it. Made once; never walked by root.
    func makeShared(for account: AppAccount?) throws {
        try FileOps.makeDirectories(layout.root)
        let made = mkdir(layout.shared, 0o750) == 0
        if !made && errno != EEXIST { throw SystemError("creating directory", path: layout.shared) }
        guard let account, geteuid() == 0 else { return }
        let shared = try DirectoryHandle.open(layout.shared)
        let info = try shared.status()
        // An existing shared/ is given over once (a root-owned one from before per-app accounts).
        if made || info.st_uid == 0 { try shared.set(owner: (account.uid, account.gid), mode: 0o750) }
    }

    /// Moves a complete release directory into `releases/` in one rename.
    func publish(_ staged: String, as id: ReleaseID) throws {
        try FileOps.makeDirectories(layout.releases)
        let destination = layout.release(id)
        guard !FileOps.exists(destination) else { throw SystemError("publishing (already exists)", path: destination, code: EEXIST) }
        guard rename(staged, destination) == 0 else { throw SystemError("publishing release", path: destination) }
        FileOps.syncDirectory(layout.releases)
    }

    // MARK: Switching

    /// Points `current` at `id`: a symlink under a temp name, then rename(2) over `current`.
    public func switchCurrent(to id: ReleaseID) throws {
        guard FileOps.isDirectory(layout.release(id)) else { throw SystemError("switching to missing release", path: layout.release(id), code: ENOENT) }
        try FileOps.replaceSymlink(at: layout.current, pointingTo: "releases/" + id.description)
    }

    /// Removes `current` (a first release whose workers failed: nothing older to go back to).
    public func unsetCurrent() {
        unlink(layout.current)
        FileOps.syncDirectory(layout.root)
    }

    /// Records in `release.json` that this release failed after it was published (its expand
    /// or its workers did not come up), so it is never switched to again for the same desired state.
    func markFailed(_ id: ReleaseID, stage: Stage, reason: String) throws {
        try updateRecord(id) { record in
            record.result = .failed
            record.failure = "\(stage) failed: \(reason)"
        }
    }

    /// Records that the release's expand finished here: from now on it may be switched to.
    func markExpanded(_ id: ReleaseID) throws {
        try updateRecord(id) { record in
            record.result = .succeeded
            record.expandedAt = .now
        }
    }

    /// Records that the release's contract step ran: the boundary a rollback does not cross.
    func markContracted(_ id: ReleaseID) throws {
        try updateRecord(id) { $0.contractedAt = .now }
    }

    private func updateRecord(_ id: ReleaseID, _ change: (inout ReleaseRecord) -> Void) throws {
        guard var record = record(id) else { return }
        change(&record)
        let path = layout.release(id) + "/" + Self.recordName
        // Release files are read-only; the record is replaced, never edited in place.
        try FileOps.writeAtomically(Array(try JSONFiles.encode(record)), to: path)
    }

    // MARK: Pruning

    /// Prunes releases: each is renamed into trash, so it leaves `releases/` at once. Deleting
    /// its files (and the objects no release links to any more) is off the deploy's path: the
    /// next pass empties the trash first.
    public func prune(_ ids: [ReleaseID]) throws {
        guard !ids.isEmpty else { return }
        let current = current()
        try FileOps.makeDirectories(layout.trash)
        for id in ids where id != current {
            let trashed = layout.trash + "/" + id.description
            guard rename(layout.release(id), trashed) == 0 else { throw SystemError("moving release to trash", path: layout.release(id)) }
        }
    }

    /// Deletes pruned releases for good, then the stored objects only they used.
    public func emptyTrash() throws {
        guard FileOps.exists(layout.trash) else { return }
        try TrashRemoval.remove(layout.trash)
        ObjectStore(root: layout.objects).collectGarbage()
    }

    /// Prunes what the retention policy says (and the build logs that go with it); returns what went.
    @discardableResult
    public func applyRetention(keep: Int, logDirectory: String, inUse: Set<ReleaseID> = []) throws -> [ReleaseID] {
        let observed = observe(memory: AppMemory())
        let doomed = releasesToPrune(observed, current: observed.current, keep: keep, inUse: inUse)
        try prune(doomed)
        BuildLog.prune(in: logDirectory, keeping: Set(releaseIDs()))
        return doomed
    }

    /// The releases a prune will keep once `current` names `release`: the switch builds the
    /// frontend archive from these, so the prune after it leaves the archive as it is.
    func kept(once release: ReleaseID, keep: Int, inUse: Set<ReleaseID>) -> [ReleaseID] {
        let observed = observe(memory: AppMemory())
        let doomed = Set(releasesToPrune(observed, current: release, keep: keep, inUse: inUse))
        return observed.releases.map(\.id).filter { !doomed.contains($0) }
    }

    private func releasesToPrune(_ observed: ObservedApp, current: ReleaseID?, keep: Int, inUse: Set<ReleaseID>) -> [ReleaseID] {
        // A release some worker still runs (or drains on) is never pruned under it.
        Retention.releasesToPrune(observed.releases.map(\.id), current: current,
                                  previousGood: Retention.previousGood(observed.releases, current: current),
                                  keep: keep, attempts: Set(observed.releases.filter { !$0.succeeded }.map(\.id))).filter { !inUse.contains($0) }
    }
}
