import Foundation
import SlipwayCore

/// The manifest's build commands (frontend first, then backend), as the app's account, in the
/// exported tree, with the documented clean environment and the app's build home; output to
/// the release's build log.
struct BuildSteps {
    let app: ResolvedApp
    let store: ReleaseStore
    let config: AgentConfig

    func run(in source: String, release id: ReleaseID, staging: String, logPath: String, account: AppAccount?) async throws {
        var steps: [(step: String, command: String)] = []
        if let command = app.manifest.frontend?.build { steps.append(("frontend", command)) }
        if let command = app.manifest.backend?.build { steps.append(("backend", command)) }
        guard !steps.isEmpty else { return }
        var environment = BuildRunner.baseEnvironment(app: app.manifest.app, release: id, sha: app.sourceSHA, staging: staging)
        let home = BuildHome(layout: store.layout)
        environment.merge(home.environment) { $1 }
        for variable in app.manifest.env { environment[variable.name] = variable.value }
        let log = try BuildLog.create(at: logPath, maxBytes: config.buildLogMax)
        defer { log.close() }
        do {
            try home.prepare(for: account)
        } catch {
            throw StageFailure(stage: .build, message: "\(error)")
        }
        if let account {
            environment["USER"] = account.name
            // The build may write in its tree; the files it did not make stay read-only to it.
            do {
                try SafeTree.giveDirectories(source, to: (account.uid, account.gid))
            } catch {
                throw StageFailure(stage: .build, message: "handing the source tree to \(account.name): \(error)")
            }
        }
        do {
            try await BuildRunner(account: account).run(steps, in: source, environment: environment, timeout: app.manifest.buildTimeout, log: log)
        } catch let failure as BuildRunner.Failure {
            throw StageFailure(stage: .build, message: failure.description)
        }
    }
}
