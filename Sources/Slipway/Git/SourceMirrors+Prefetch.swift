import Foundation
import SlipwayCore
import Synchronization

/// A mirror's handle passed from the prefetch thread that synced it to the pass.
/// `@unchecked Sendable`: the thread hands it over as its last use of it, and the pass takes it
/// only after every thread has finished (`group.wait()`), so it is never used by two at once.
private struct HandedOver: @unchecked Sendable {
    let repo: GitRepository
}

extension SourceMirrors {
    /// One mirror brought up to its remote: a new mirror of a local path is first filled the way
    /// `git clone --local` does it (`LocalClone`), after which the sync finds nothing moved.
    static func sync(_ repo: GitRepository, from url: String, access: RemoteAccess) throws(GitError) {
        _ = LocalClone.fill(repo, from: url, refspecs: refspecs)
        try repo.sync(from: url, refspecs: refspecs, access: access)
    }

    /// Syncs, before the apps are visited one by one, every mirror the pass will fetch: at most
    /// `width` at a time, each on its own thread with its own libgit2 handle. A pass over apps on
    /// many remotes then waits about as long as its slowest remotes, not as long as all of them.
    /// The outcomes are what `resolve` finds (a remote is still reached once per pass); a source
    /// pinned to a commit its mirror already holds is not fetched at all, as in `resolve`.
    func prefetch(_ sources: [Manifest.Source], width: Int = 8) {
        var seen = Set<String>()
        var urls: [String] = []
        var pinned: [String: [String]] = [:]
        for source in sources where fetchedThisPass[source.repo] == nil {
            switch source.ref {
            case .commit(let sha): pinned[source.repo, default: []].append(sha)
            case .name: pinned[source.repo, default: []].append("")
            }
            if seen.insert(source.repo).inserted { urls.append(source.repo) }
        }
        // One remote is synced by `resolve` itself: no thread for it.
        guard urls.count > 1 else { return }
        let jobs = urls.map { url in (url: url, path: mirrorPath(for: url), commits: pinned[url] ?? []) }
        let access = self.access
        let next = Atomic<Int>(0)
        let outcomes = Mutex<[String: (Result<Void, GitError>, Duration)]>([:])
        let opened = Mutex<[String: HandedOver]>([:])
        let group = DispatchGroup()
        for _ in 0..<min(width, jobs.count) {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                while true {
                    let index = next.add(1, ordering: .relaxed).oldValue
                    guard index < jobs.count else { return }
                    let job = jobs[index]
                    let started = ContinuousClock.now
                    let outcome: Result<Void, GitError>?
                    do throws(GitError) {
                        let repo = try GitRepository.openMirror(at: job.path)
                        defer { opened.withLock { $0[job.url] = HandedOver(repo: repo) } }
                        // Every app on it is pinned to a commit the mirror holds: nothing to ask.
                        if !job.commits.contains(""), job.commits.allSatisfy({ repo.hasCommit($0) }) {
                            outcome = nil
                        } else {
                            try Self.sync(repo, from: job.url, access: access)
                            outcome = .success(())
                        }
                    } catch {
                        outcome = .failure(error)
                    }
                    if let outcome { outcomes.withLock { $0[job.url] = (outcome, ContinuousClock.now - started) } }
                }
            }
        }
        group.wait()
        // The pass reads each mirror with the handle its sync used (opening one reads three
        // config files): no thread uses it any more.
        for (url, handed) in opened.withLock({ $0 }) { adopt(handed.repo, for: url) }
        for (url, (outcome, took)) in outcomes.withLock({ $0 }) {
            fetchedThisPass[url] = outcome
            syncTimes[url] = took
        }
    }
}
