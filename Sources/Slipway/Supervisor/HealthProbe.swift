import Foundation
import SlipwayCore

/// `backend.health`: an HTTP GET; any 2xx is healthy. Workers are judged on their own socket
/// (`judge(slot:)`), never through the shared one, where any worker may answer.
struct HealthProbe: Sendable {
    let endpoint: AgentClient.Endpoint
    let health: Workers.Health

    /// Nil when healthy; otherwise what went wrong, for the status and the log.
    func check() async -> String? {
        do {
            let response = try await AgentClient(endpoint: endpoint, timeout: health.timeout).request(.GET, health.path)
            if (200..<300).contains(response.status) { return nil }
            return "GET \(health.path) answered \(response.status)"
        } catch {
            return "GET \(health.path) failed: \(error)"
        }
    }

    /// `times` checks in a row, all healthy; stops at the first failure.
    func check(times: Int) async -> String? {
        for _ in 0..<times {
            if let problem = await check() { return problem }
        }
        return nil
    }
}
