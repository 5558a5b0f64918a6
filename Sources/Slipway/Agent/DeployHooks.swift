import Foundation
import Logging
import SlipwayCore

/// Runs `on_deploy` hooks after a deploy ends: each in its own task, never awaited by the
/// deploy, so a failing or hanging hook cannot block or fail one. Commands are killed at their
/// timeout (or when the agent stops); webhooks are retried with backoff. Failures are logged and counted.
struct DeployHooks {
    let config: AgentConfig
    let metrics: AgentMetrics
    let logger: Logger

    /// What every hook is told about a deploy.
    struct Facts: Sendable, Codable {
        var app: String
        var host: String
        var sha: String
        var release: String
        var result: String
        var stage: String
        var error: String
        /// "deploy", or "rollback" for a switch back to a kept release.
        var action: String

        var environment: [String: String] {
            ["SLIPWAY_ACTION": action, "SLIPWAY_APP": app, "SLIPWAY_HOST": host, "SLIPWAY_SHA": sha, "SLIPWAY_RELEASE": release,
             "SLIPWAY_RESULT": result, "SLIPWAY_STAGE": stage, "SLIPWAY_ERROR": error]
        }
    }

    static func facts(app: AppName, host: String, outcome: DeployOutcome) -> Facts {
        Facts(app: app.value, host: host, sha: outcome.sha, release: outcome.release?.description ?? "",
              result: outcome.result.rawValue, stage: (outcome.failedStage ?? outcome.stages.last?.stage ?? .prune).rawValue,
              error: outcome.error ?? "", action: (outcome.kind ?? .deploy).rawValue)
    }

    /// Starts every hook; the returned tasks end when the hooks do (the caller need not wait).
    func fire(_ facts: Facts) -> [Task<Void, Never>] {
        config.onDeploy.map { hook in
            Task.detached { [self] in
                if let command = hook.command { await run(command, facts: facts, timeout: hook.timeout) }
                if let url = hook.webhook { await post(url, facts: facts, hook: hook) }
            }
        }
    }

    private func run(_ command: String, facts: Facts, timeout: Duration) async {
        do {
            let log = try BuildLog.create(at: config.stateDir + "/logs/hooks.log")
            defer { log.close() }
            log.note("==> \(UTCTime.now.iso8601) on_deploy for \(facts.app) (\(facts.result)): \(command)")
            var environment = facts.environment
            environment["PATH"] = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
            environment["LANG"] = "C.UTF-8"
            let child = try ChildProcess.spawnShell(command, in: "/", environment: environment, outputFD: log.fd)
            let termination = await child.wait(timeout: timeout, grace: .seconds(2))
            log.note("==> on_deploy command \(termination.explanation)")
            guard termination.succeeded else {
                logger.warning("on_deploy command \(termination.explanation); see \(log.path)", metadata: ["app": "\(facts.app)"])
                metrics.hookFinished(kind: "command", outcome: "failed")
                return
            }
            metrics.hookFinished(kind: "command", outcome: "succeeded")
        } catch {
            logger.warning("on_deploy command could not start: \(error)", metadata: ["app": "\(facts.app)"])
            metrics.hookFinished(kind: "command", outcome: "failed")
        }
    }

    private func post(_ url: String, facts: Facts, hook: AgentConfig.DeployHook) async {
        guard let endpoint = AgentClient.Endpoint(url),
              let secret = (hook.secretFile ?? config.notifySecretFile).flatMap({ FileOps.readFile($0) }).map(NotifyEndpoint.trimmed),
              let body = try? JSONEncoder.sorted.encode(facts) else {
            logger.warning("on_deploy webhook \(url): no usable URL or secret", metadata: ["app": "\(facts.app)"])
            metrics.hookFinished(kind: "webhook", outcome: "failed")
            return
        }
        let path = url.dropFirst("http://".count).split(separator: "/", maxSplits: 1).dropFirst().first.map { "/" + $0 } ?? "/"
        var delay = Duration.milliseconds(500)
        for attempt in 0...hook.retries {
            let timestamp = UTCTime.now.millisecondsSinceEpoch / 1000
            let headers = [("Content-Type", "application/json"), (NotifyAuth.timestampHeader, "\(timestamp)"),
                           (NotifyAuth.signatureHeader, NotifyAuth.signature(body: Array(body), timestamp: timestamp, secret: secret))]
            do {
                let response = try await AgentClient(endpoint: endpoint, timeout: hook.timeout).request(.POST, path, headers: headers, body: Array(body))
                if (200..<300).contains(response.status) {
                    metrics.hookFinished(kind: "webhook", outcome: "succeeded")
                    return
                }
                logger.warning("on_deploy webhook \(url) answered HTTP \(response.status) (attempt \(attempt + 1))", metadata: ["app": "\(facts.app)"])
            } catch {
                logger.warning("on_deploy webhook \(url) failed (attempt \(attempt + 1)): \(error)", metadata: ["app": "\(facts.app)"])
            }
            if attempt < hook.retries {
                if Task.isCancelled { break }
                try? await Task.sleep(for: delay)
                delay *= 2
            }
        }
        metrics.hookFinished(kind: "webhook", outcome: "failed")
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
