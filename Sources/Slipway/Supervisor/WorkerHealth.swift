import Foundation
import SlipwayCore

/// A worker's last health result, as `status` shows it: passed or not, what it answered,
/// when, and how long the check took.
public struct WorkerHealth: Sendable, Codable, Equatable {
    public var passed: Bool
    /// "200", "answered 500", "did not answer …": what the check saw.
    public var detail: String
    public var at: UTCTime
    public var milliseconds: Int64
}

extension HealthProbe {
    /// One check of worker `slot` on its own socket (fd 4): only that worker can answer it.
    /// The problem, if any, names the worker ("worker 0 …"); a worker that serves only fd 3
    /// never answers, and its message says where to look.
    func judge(slot: Int) async -> (health: WorkerHealth, problem: String?) {
        let started = ContinuousClock.now
        let at = UTCTime.now
        var problem: String?
        var detail: String
        do {
            let response = try await AgentClient(endpoint: endpoint, timeout: health.timeout).request(.GET, health.path)
            detail = "\(response.status)"
            if !(200..<300).contains(response.status) {
                detail = "answered \(response.status)"
                problem = "worker \(slot) failed its health check: GET \(health.path) answered \(response.status) on its own socket (fd 4)"
            }
        } catch {
            if ContinuousClock.now - started >= health.timeout {
                detail = "did not answer within \(DurationText.format(health.timeout))"
                problem = Self.unanswered(slot: slot, path: health.path, timeout: health.timeout)
            } else {
                detail = "failed: \(error)"
                problem = "worker \(slot) failed its health check: GET \(health.path) on its own socket (fd 4) failed: \(error)"
            }
        }
        let elapsed = ContinuousClock.now - started
        return (WorkerHealth(passed: problem == nil, detail: detail, at: at, milliseconds: elapsed.milliseconds), problem)
    }

    /// What an app that serves only fd 3 gets (the agent's socket queues the connection, and
    /// nobody ever accepts it).
    static func unanswered(slot: Int, path: String, timeout: Duration) -> String {
        "worker \(slot) did not answer GET \(path) on its own socket (fd 4) within \(DurationText.format(timeout)); see docs/workers.md#health"
    }
}
