import Foundation
import Logging
import SlipwayCore

/// Every app's workers on this host. Lives as long as the agent process: workers outlive
/// passes, and on shutdown they are drained before the agent exits.
public actor Supervisor {
    let config: AgentConfig
    let logger: Logger
    let metrics: AgentMetrics
    var apps: [AppName: AppSupervisor] = [:]

    public init(config: AgentConfig, logger: Logger, metrics: AgentMetrics) {
        self.config = config
        self.logger = logger
        self.metrics = metrics
    }

    func supervisor(for app: AppName) -> AppSupervisor {
        if let existing = apps[app] { return existing }
        let created = AppSupervisor(app: app, stateDir: config.stateDir,
                                    appDirectory: AppLayout(appsRoot: config.appsRoot, app: app).root, logger: logger,
                                    metrics: metrics)
        apps[app] = created
        return created
    }

    func existing(_ app: AppName) -> AppSupervisor? { apps[app] }

    /// Stops an app's workers (its manifest is gone, or it has no workers any more), including
    /// any a previous agent process left running.
    func stop(_ app: AppName, reason: String) async {
        let hasTable = FileOps.exists(WorkerTable.path(stateDir: config.stateDir, app: app.value))
        guard apps[app] != nil || hasTable else { return }
        await supervisor(for: app).stopAll(reason: reason)
        apps[app] = nil
        unlink(WorkerTable.path(stateDir: config.stateDir, app: app.value))
    }

    /// Drains every app's workers at once, each within its own stop timeout.
    public func stopAll() async {
        let all = apps
        await withTaskGroup(of: Void.self) { group in
            for (_, app) in all { group.addTask { await app.stopAll(reason: "the agent is stopping") } }
        }
    }
}
