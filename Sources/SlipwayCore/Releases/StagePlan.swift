/// Which of `Stage.deploy` one deploy runs on this host, decided from the manifest alone, so
/// the list a deploy will run is known (and tested) before anything runs.
public enum StagePlan {
    /// `runsWorkers`: the agent runs workers here (a running agent, not a one-shot pass).
    ///
    /// - `expand` when this host runs `migrate.expand`, or waits for another host's (`migrate.check`);
    /// - `reload` and `verify` when the backend has workers (`backend.command`) and workers run here;
    /// - `contract` when this host runs `migrate.contract`.
    public static func deploy(_ manifest: Manifest, role: MigrationRole, runsWorkers: Bool) -> [Stage] {
        let workers = runsWorkers && manifest.backend?.workers != nil
        return Stage.deploy.filter { stage in
            switch stage {
            case .expand: return role.gatesSwitch(manifest.migrate)
            case .reload, .verify: return workers
            case .contract: return role.contracts(manifest.migrate)
            case .fetch, .build, .switch, .prune: return true
            }
        }
    }

    /// Going back to a kept release (`slipway rollback`, or a kept release that realises the
    /// manifest): the deploy's flow without fetch, build and migrations.
    public static func rollback(_ manifest: Manifest?, runsWorkers: Bool) -> [Stage] {
        let workers = runsWorkers && manifest?.backend?.workers != nil
        return Stage.rollback.filter { stage in
            stage == .switch || workers
        }
    }
}
