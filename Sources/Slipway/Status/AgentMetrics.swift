import Foundation
import Prometheus
import SlipwayCore

/// The agent's Prometheus metrics, named after the deploy stages. After every pass they are
/// written to `state_dir/metrics.prom` in the text format (point node_exporter's textfile
/// collector at it); counters count since the agent process started.
public final class AgentMetrics: @unchecked Sendable {
    public let registry = PrometheusCollectorRegistry()
    private let passes: Counter
    private let lock = NSLock()
    private var refusedGauge: Gauge?
    private var releaseGauges: [String: (release: String, gauge: Gauge)] = [:]
    private var rssGauges: [String: Gauge] = [:]

    public init() {
        passes = registry.makeCounter(descriptor: Self.name("passes", unit: "total", help: "Reconcile passes run."))
    }

    static func name(_ metric: String, unit: String = "", help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "slipway", metricName: metric, unitName: unit, helpText: help)
    }

    func passFinished(converged: Bool) {
        passes.increment()
        registry.makeGauge(descriptor: Self.name("last_pass_converged", help: "1 when the last pass converged.")).set(to: converged ? 1 : 0)
    }

    /// A deploy, or a rollback (`outcome.kind`), ended: counted by app and result, its stages timed.
    func deployFinished(app: AppName, outcome: DeployOutcome) {
        if outcome.kind == .rollback {
            registry.makeCounter(descriptor: Self.name("rollbacks", unit: "total", help: "Switches back to a kept release by app and result."),
                                 labels: [("app", app.value), ("result", outcome.result.rawValue)]).increment()
        } else {
            registry.makeCounter(descriptor: Self.name("deploys", unit: "total", help: "Deploys by app and result."),
                                 labels: [("app", app.value), ("result", outcome.result.rawValue)]).increment()
        }
        for timing in outcome.stages {
            stageFinished(timing.stage, milliseconds: timing.milliseconds)
        }
        if outcome.result == .succeeded, outcome.kind != .rollback {
            registry.makeGauge(descriptor: Self.name("last_success_timestamp", unit: "seconds", help: "When the app's last deploy succeeded (Unix time)."),
                               labels: [("app", app.value)])
                .set(to: Double(outcome.finishedAt.millisecondsSinceEpoch) / 1000)
        }
    }

    /// A stage that finished, in a deploy or alone (a contract step retried on a later pass).
    func stageFinished(_ stage: Stage, milliseconds: Int64) {
        registry.makeDurationHistogram(descriptor: Self.name("stage_duration", unit: "seconds", help: "How long each deploy stage took."),
                                       labels: [("stage", stage.rawValue)], buckets: Self.buckets)
            .record(.milliseconds(milliseconds))
    }

    /// Sets (or clears, with nil) the refused manifests commit; counts each new refusal.
    func manifestsRefused(_ refusal: TrustStatus.Refusal?, isNew: Bool) {
        lock.withLock {
            if let old = refusedGauge {
                registry.unregisterGauge(old)
                refusedGauge = nil
            }
            guard let refusal else { return }
            if isNew {
                registry.makeCounter(descriptor: Self.name("manifests_refusals", unit: "total", help: "Manifests branch tips refused by signature or history checks."),
                                     labels: [("reason", refusal.reason)]).increment()
            }
            let gauge = registry.makeGauge(descriptor: Self.name("manifests_refused", help: "1 while the agent refuses this manifests commit."),
                                           labels: [("commit", refusal.commit), ("reason", refusal.reason), ("fingerprint", refusal.fingerprint ?? "")])
            gauge.set(to: 1)
            refusedGauge = gauge
        }
    }

    /// How many apps a held mass removal keeps running (0 when none is held).
    func removalsHeld(_ count: Int) {
        registry.makeGauge(descriptor: Self.name("removals_held", help: "Apps a manifests commit removes that wait for 'slipway apply --allow-removals'."))
            .set(to: Double(count))
    }

    /// `slipway_current_release_info{app,release,sha} 1` for the release `current` points at.
    func currentRelease(app: AppName, release: ReleaseID?, sha: String?) {
        lock.withLock {
            if let old = releaseGauges[app.value] {
                guard old.release != release?.description else { return }
                registry.unregisterGauge(old.gauge)
                releaseGauges[app.value] = nil
            }
            guard let release else { return }
            let gauge = registry.makeGauge(descriptor: Self.name("current_release_info", help: "The release each app's current symlink names (value 1)."),
                                           labels: [("app", app.value), ("release", release.description), ("sha", sha ?? "")])
            gauge.set(to: 1)
            releaseGauges[app.value] = (release.description, gauge)
        }
    }

    func notifyRequest(outcome: String) {
        registry.makeCounter(descriptor: Self.name("notify_requests", unit: "total", help: "Push notifications received, by outcome."),
                             labels: [("outcome", outcome)]).increment()
    }

    func hookFinished(kind: String, outcome: String) {
        registry.makeCounter(descriptor: Self.name("on_deploy_hooks", unit: "total", help: "on_deploy hooks run, by kind and outcome."),
                             labels: [("kind", kind), ("outcome", outcome)]).increment()
    }

    // MARK: Workers

    /// Per app: workers by state, RSS per slot, and whether the app is degraded (crash loop).
    func workersObserved(_ table: WorkerTable) {
        let app = table.app
        for state in [WorkerTable.Worker.State.starting, .ready, .draining, .backoff] {
            registry.makeGauge(descriptor: Self.name("workers", help: "Worker processes by app and state."),
                               labels: [("app", app), ("state", state.rawValue)])
                .set(to: Double(table.workers.filter { $0.state == state }.count))
        }
        registry.makeGauge(descriptor: Self.name("app_degraded", help: "1 while an app's workers are crash-looping or a reload left it unhealthy."),
                           labels: [("app", app)]).set(to: table.degraded == nil ? 0 : 1)
        lock.withLock {
            var seen: Set<String> = []
            // A slot's first row is the worker in it; one a rollout is starting for it follows.
            for worker in table.workers where worker.state != .draining {
                let key = "\(app)/\(worker.slot)"
                guard seen.insert(key).inserted else { continue }
                let gauge = rssGauges[key] ?? registry.makeGauge(
                    descriptor: Self.name("worker_resident_memory", unit: "bytes", help: "RSS of each worker's process group."),
                    labels: [("app", app), ("slot", String(worker.slot))])
                rssGauges[key] = gauge
                gauge.set(to: Double(worker.rssBytes ?? 0))
            }
            for (key, gauge) in rssGauges where key.hasPrefix(app + "/") && !seen.contains(key) {
                registry.unregisterGauge(gauge)
                rssGauges[key] = nil
            }
        }
    }

    /// A worker started again in its slot: `crash` (it exited on its own) or `max_memory`.
    func workerRestarted(app: AppName, reason: String) {
        registry.makeCounter(descriptor: Self.name("worker_restarts", unit: "total", help: "Workers restarted, by app and reason."),
                             labels: [("app", app.value), ("reason", reason)]).increment()
    }

    /// A rolling reload ended: `succeeded` or `failed` (the previous workers kept serving).
    func rolloutFinished(app: AppName, stage: Stage, succeeded: Bool) {
        registry.makeCounter(descriptor: Self.name("rollouts", unit: "total", help: "Rolling reloads and their checks, by app, stage and result."),
                             labels: [("app", app.value), ("stage", stage.rawValue), ("result", succeeded ? "succeeded" : "failed")]).increment()
    }

    // MARK: nginx

    func nginxReloaded() {
        registry.makeCounter(descriptor: Self.name("nginx_reloads", unit: "total", help: "nginx reloads after a server block changed, that nginx took.")).increment()
    }

    /// A reload command failed, or nginx did not take the reload (a changed listen unserved).
    func nginxReloadFailed() {
        registry.makeCounter(descriptor: Self.name("nginx_reload_failures", unit: "total",
                                                   help: "nginx reloads that failed or that nginx did not take (the previous server blocks went back).")).increment()
    }

    func nginxRefused(app: AppName) {
        registry.makeCounter(descriptor: Self.name("nginx_refusals", unit: "total", help: "Server blocks nginx refused (the previous one kept serving)."),
                             labels: [("app", app.value)]).increment()
    }

    static let buckets: [Duration] = [.milliseconds(10), .milliseconds(50), .milliseconds(250), .seconds(1), .seconds(5),
                                      .seconds(30), .seconds(120), .seconds(600), .seconds(1800)]

    public func text() -> String { registry.emitToString() }

    func write(stateDir: String) throws {
        // Rewritten from memory every pass: an fsync a pass would buy nothing.
        try FileOps.writeAtomically(Array(text().utf8), to: stateDir + "/metrics.prom", mode: 0o644, durable: false)
    }
}
