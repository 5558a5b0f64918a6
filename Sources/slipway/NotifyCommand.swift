import ArgumentParser
import Foundation
import Slipway
import SlipwayCore

struct NotifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notify",
        abstract: "Tell agents that a branch moved (for git hooks and scripts).",
        discussion: """
        Sends a signed POST /v1/notify to each agent, in parallel, with a short timeout. Exits 0 \
        when every agent accepted it; otherwise names each agent that missed it on stderr and exits 1. \
        The agents fetch the branch themselves: the notification only says when to look.
        """
    )

    @Option(name: .customLong("agent"), help: ArgumentHelp("An agent: http://HOST:PORT or a unix socket path. Repeatable.", valueName: "url"))
    var agents: [String]

    @Option(help: ArgumentHelp("The file holding the shared secret (one line).", valueName: "file"))
    var secretFile: String

    @Option(help: "The ref that moved.")
    var ref: String = "refs/heads/main"

    @Option(help: "The commit it moved to.")
    var after: String

    @Option(help: "The commit it moved from.")
    var before: String = String(repeating: "0", count: 40)

    @Option(help: "Seconds to wait for each agent.")
    var timeout: Double = 2

    func run() async throws {
        try await Self.reporting {
            guard let secret = FileManager.default.contents(atPath: secretFile) else { throw CLIError("cannot read the secret file \(secretFile)") }
            let key = Array(String(decoding: secret, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines).utf8)
            let object: [String: String] = ["ref": ref, "before": before, "after": after, "pushed_at": UTCTime.now.iso8601]
            let body = Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
            let endpoints = try agents.map { text -> AgentClient.Endpoint in
                guard let endpoint = AgentClient.Endpoint(text) else { throw CLIError("'\(text)' is neither http://HOST:PORT nor a socket path") }
                return endpoint
            }
            let timeout = Duration.milliseconds(Int64(timeout * 1000))
            let missed = await withTaskGroup(of: String?.self) { group in
                for endpoint in endpoints {
                    group.addTask {
                        let timestamp = UTCTime.now.millisecondsSinceEpoch / 1000
                        let headers = [("Content-Type", "application/json"), (NotifyAuth.timestampHeader, "\(timestamp)"),
                                       (NotifyAuth.signatureHeader, NotifyAuth.signature(body: body, timestamp: timestamp, secret: key))]
                        do {
                            let response = try await AgentClient(endpoint: endpoint, timeout: timeout).request(.POST, "/v1/notify", headers: headers, body: body)
                            return (200..<300).contains(response.status) ? nil : "\(endpoint): HTTP \(response.status) \(response.body.trimmingCharacters(in: .whitespacesAndNewlines))"
                        } catch {
                            return "\(endpoint): \(error)"
                        }
                    }
                }
                var missed: [String] = []
                for await result in group { if let result { missed.append(result) } }
                return missed
            }
            guard missed.isEmpty else {
                throw CLIError("\(missed.count) of \(endpoints.count) agent(s) missed the notification:\n  " + missed.joined(separator: "\n  "))
            }
        }
    }
}
