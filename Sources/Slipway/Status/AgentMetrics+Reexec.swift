import Foundation
import Prometheus

/// Re-execs of the agent (issue 19): `slipway_agent_reexecs_total{outcome}` and how long each
/// took from SIGUSR2 to the new image owning every worker. Counted over the process's life:
/// a new image starts its counters where the previous one left them.
extension AgentMetrics {
    public enum ReexecOutcome: String, Sendable {
        /// The new image took every worker over.
        case succeeded
        /// The binary at the agent's path was refused, or `execve` failed: the old image went on.
        case failed
        /// The new image gave up and the old image came back from its fd.
        case rolledBack = "rolled_back"
    }

    func reexecFinished(outcome: ReexecOutcome, seconds: Double) {
        reexecCounter(outcome).increment()
        registry.makeDurationHistogram(descriptor: Self.name("agent_reexec_duration", unit: "seconds",
                                                             help: "From SIGUSR2 to the new image owning every worker."),
                                       labels: [("outcome", outcome.rawValue)], buckets: Self.buckets)
            .record(.milliseconds(Int64(max(0, seconds) * 1000)))
    }

    /// Carries over the counts of the re-execs before the one just finished (which
    /// `reexecFinished` counts); earlier comebacks count as failed.
    func reexecsBefore(succeeded: Int, failed: Int) {
        if succeeded > 0 { reexecCounter(.succeeded).increment(by: Int64(succeeded)) }
        if failed > 0 { reexecCounter(.failed).increment(by: Int64(failed)) }
    }

    private func reexecCounter(_ outcome: ReexecOutcome) -> Counter {
        registry.makeCounter(descriptor: Self.name("agent_reexecs", unit: "total", help: "Re-execs of the agent by outcome."),
                             labels: [("outcome", outcome.rawValue)])
    }
}
