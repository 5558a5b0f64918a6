import Foundation
import Logging
import SlipwayCore

/// Turning a built tree into a release: the tree is sealed (the app's workers can read it, not
/// change it), then laid out beside the source as frontend/ and backend/ (with shared dirs
/// linked in). Only real directories reached without a symlink are published.
struct ReleaseAssembly {
    let app: ResolvedApp
    let store: ReleaseStore
    let logger: Logger

    /// Once built, the tree belongs to the agent (see `SafeTree.seal`: modes lose group/other
    /// write and setuid/setgid, foreign hard links are copied). Done before anything in it is
    /// looked at, so nothing changes under the checks.
    func seal(_ source: String) throws {
        do {
            let report = try SafeTree.seal(source)
            if report != SafeTree.SealReport() {
                logger.info("sealed the built tree", metadata: [
                    "stage": "build", "modes_changed": "\(report.modesChanged)", "copied": "\(report.copied)", "removed": "\(report.removed)",
                ])
            }
        } catch {
            throw StageFailure(stage: .build, message: "taking the built tree back from the build: \(error)")
        }
    }

    /// `staging/release/`: frontend/ (the build's output) and backend/ (with shared dirs linked in).
    func assemble(staging: String, account: AppAccount?) throws {
        let source = staging + "/src"
        let release = staging + "/release"
        try FileOps.makeDirectory(release)
        if let frontend = app.manifest.frontend {
            let output = try ReleaseLayoutCheck.directory(frontend.output, in: source, what: "frontend.output")
            do {
                try FrontendOutputLinks.settle(output: output, declared: frontend.output)
            } catch let refused as FrontendOutputLinks.Refused {
                throw StageFailure(stage: .build, message: refused.description)
            }
            guard rename(output, release + "/frontend") == 0 else { throw SystemError("moving frontend output", path: output) }
        }
        if let backend = app.manifest.backend {
            let dir = try ReleaseLayoutCheck.directory(backend.dir, in: source, what: "backend.dir")
            guard rename(dir, release + "/backend") == 0 else { throw SystemError("moving backend", path: dir) }
            for path in app.manifest.shared {
                try linkShared(path, into: release + "/backend", account: account)
            }
            // The backend is the app's alone: its account's group may read it, other apps may not.
            try store.restrict(release + "/backend", to: account)
        }
    }

    /// `backend/<path>` becomes a symlink to `<app>/shared/<path>`, replacing whatever the source had there.
    private func linkShared(_ path: RelativePath, into backend: String, account: AppAccount?) throws {
        let target = store.layout.shared + "/" + path.value
        try store.makeShared(for: account)
        // shared/ is the app's to write: nothing in it is reached through a link it planted.
        try SafeTree.makeDirectories(path.components, under: store.layout.shared, owner: account.map { ($0.uid, $0.gid) })
        let link = backend + "/" + path.value
        let parent = String(link[..<link.lastIndex(of: "/")!])
        try FileOps.makeDirectories(parent)
        try SafeTree.remove(link)
        guard symlink(target, link) == 0 else { throw SystemError("linking shared directory", path: link) }
    }
}

/// Checks that a path the manifest names inside the built tree is a real directory reached
/// without following any symlink, so a build cannot publish something outside its tree.
enum ReleaseLayoutCheck {
    static func directory(_ path: RelativePath, in root: String, what: String) throws -> String {
        var current = root
        for component in path.components {
            current += "/" + component
            switch FileOps.lstatMode(current) {
            case S_IFDIR?: continue
            case S_IFLNK?: throw StageFailure(stage: .build, message: "\(what) '\(path)' is a symlink after the build; Slipway publishes only real directories")
            case nil: throw StageFailure(stage: .build, message: "\(what) '\(path)' does not exist after the build; check the build command's output directory")
            default: throw StageFailure(stage: .build, message: "\(what) '\(path)' is not a directory after the build")
            }
        }
        return current
    }
}

/// `release.json`, written last, just before the release is published.
enum ReleaseRecords {
    static func write(for app: ResolvedApp, id: ReleaseID, manifestsCommit: String, timings: [ReleaseRecord.StageTiming],
                      result: ReleaseRecord.Result, into release: String) throws {
        let record = ReleaseRecord(
            app: app.manifest.app, id: id,
            source: .init(repo: app.manifest.source.repo, ref: app.manifest.source.ref.description, sha: app.sourceSHA),
            manifest: .init(commit: manifestsCommit, path: app.manifestPath),
            fingerprint: app.spec.fingerprint, createdAt: .now, stages: timings, result: result)
        try FileOps.writeAtomically(Array(try JSONFiles.encode(record)), to: release + "/" + ReleaseStore.recordName)
    }
}
