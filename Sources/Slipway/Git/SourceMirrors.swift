import Crypto
import Foundation
import SlipwayCore

/// Local bare mirrors of every source repo the manifests name, under `state_dir/mirrors/`.
/// Fetches are incremental, and within one pass each repo is fetched at most once.
final class SourceMirrors {
    let root: String
    let access: RemoteAccess
    /// Each remote is reached once per pass, however many apps share it.
    var fetchedThisPass: [String: Result<Void, GitError>] = [:]
    private var openedThisPass: [String: GitRepository] = [:]
    /// How long each remote's sync took this pass: the fetch stage of a deploy reports it.
    var syncTimes: [String: Duration] = [:]

    init(stateDir: String, access: RemoteAccess = .anonymous) {
        root = stateDir + "/mirrors/sources"
        self.access = access
    }

    static let refspecs = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"]

    /// Forget which repos were fetched, at the start of each pass.
    func startPass() {
        fetchedThisPass = [:]
        openedThisPass = [:]
        syncTimes = [:]
    }

    /// The time this pass spent syncing the mirror of `url` with its remote (nil: not synced).
    func syncTime(of url: String) -> Duration? { syncTimes[url] }

    /// The mirror for `url`: a readable name plus a hash, so two URLs never share one.
    func mirrorPath(for url: String) -> String {
        let digest = Hex.encode(SHA256.hash(data: Array(url.utf8)).prefix(8))
        let base = url.split(whereSeparator: { $0 == "/" || $0 == ":" }).last.map(String.init) ?? "repo"
        let safe = String(base.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." ? $0 : "_" }.prefix(40))
        return "\(root)/\(safe.hasSuffix(".git") ? String(safe.dropLast(4)) : safe)-\(digest).git"
    }

    /// The mirror's handle, opened once per pass (opening one reads its config and git's global
    /// ones: a few dozen system calls an app, for every app of every pass).
    func open(_ url: String) throws(GitError) -> GitRepository {
        if let repo = openedThisPass[url] { return repo }
        let repo = try GitRepository.openMirror(at: mirrorPath(for: url))
        openedThisPass[url] = repo
        return repo
    }

    /// Takes `repo` as this pass's handle of the mirror of `url` (one a prefetch thread opened).
    func adopt(_ repo: GitRepository, for url: String) {
        if openedThisPass[url] == nil { openedThisPass[url] = repo }
    }

    private func fetchOnce(_ repo: GitRepository, url: String) throws(GitError) {
        if let done = fetchedThisPass[url] { return try done.get() }
        let started = ContinuousClock.now
        defer { syncTimes[url] = ContinuousClock.now - started }
        do {
            try Self.sync(repo, from: url, access: access)
            fetchedThisPass[url] = .success(())
        } catch {
            fetchedThisPass[url] = .failure(error)
            throw error
        }
    }

    /// Resolves a declared ref to a commit id, fetching only when needed: a full commit id the
    /// mirror already holds costs no network at all.
    func resolve(_ source: Manifest.Source) -> Result<String, SourceProblem> {
        do {
            let repo = try open(source.repo)
            switch source.ref {
            case .commit(let sha):
                if repo.hasCommit(sha) { return .success(sha) }
                try fetchOnce(repo, url: source.repo)
                if repo.hasCommit(sha) { return .success(sha) }
                return .failure(SourceProblem("commit \(sha) is not in \(source.repo); is it pushed?"))
            case .name(let name):
                try fetchOnce(repo, url: source.repo)
                for candidate in ["refs/tags/\(name)", "refs/heads/\(name)"] {
                    if let sha = try repo.referenceTarget(candidate) { return .success(sha) }
                }
                return .failure(SourceProblem("ref '\(name)' is neither a tag nor a branch of \(source.repo)"))
            }
        } catch {
            return .failure(SourceProblem(error.description))
        }
    }
}

/// Why a declared source could not be resolved to a commit.
struct SourceProblem: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) {
        self.description = description
    }
}
