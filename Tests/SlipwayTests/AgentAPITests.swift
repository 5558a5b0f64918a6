import Crypto
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing
@testable import Slipway
import SlipwayCore

/// The agent's HTTP API in-process (Hummingbird's router test client): what strangers on TCP may
/// see, and how the notify endpoint judges a push. The listeners themselves (connection caps,
/// the unix socket's mode, slow clients) are end-to-end tests.
@Suite(.timeLimit(.minutes(1))) struct AgentAPITests {
    let host: PassSandbox
    let runtime: AgentRuntime
    let secret = "notify-secret-\(UInt32.random(in: 0...UInt32.max))"

    init() throws {
        host = try PassSandbox()
        let secretFile = host.root + "/notify.secret"
        try secret.write(toFile: secretFile, atomically: true, encoding: .utf8)
        var config = host.config
        config.notifySecretFile = secretFile
        runtime = AgentRuntime(config: config)
    }

    func app(local: Bool) -> some ApplicationProtocol {
        var logger = Logger(label: "slipway.test")
        logger.logLevel = .critical
        return Application(router: AgentAPI.router(runtime: runtime, logger: logger, local: local))
    }

    static func signedHeaders(_ body: String, timestamp: Int64 = UTCTime.now.millisecondsSinceEpoch / 1000, secret: String) -> HTTPFields {
        var fields = HTTPFields()
        fields[.init(NotifyAuth.timestampHeader)!] = "\(timestamp)"
        fields[.init(NotifyAuth.signatureHeader)!] = NotifyAuth.signature(body: Array(body.utf8), timestamp: timestamp,
                                                                          secret: Array(secret.utf8))
        fields[.contentType] = "application/json"
        return fields
    }

    @Test func healthAndMetricsAnswerEveryoneStatusOnlyTheSocket() async throws {
        try await app(local: false).test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "ok\n")
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("slipway_"))
            }
            // No api.token_file: status is not served on TCP at all; nor is the pass trigger.
            try await client.execute(uri: "/v1/status", method: .get) { #expect($0.status == .notFound) }
            try await client.execute(uri: "/v1/pass", method: .post) { #expect($0.status == .notFound) }
        }
        try await app(local: true).test(.router) { client in
            try await client.execute(uri: "/v1/status", method: .get) { response in
                #expect(response.status == .ok)
                let json = try JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8)) as? [String: Any]
                #expect(json?["host"] as? String == "web-1")
            }
        }
        runtime.beginStopping()
        try await app(local: false).test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { #expect(String(buffer: $0.body) == "stopping\n") }
        }
    }

    @Test func onlyAFreshSignedNotificationIsAcceptedAndOnlyOnce() async throws {
        let (runtime, secret) = (self.runtime, self.secret)
        let signedHeaders = { @Sendable (body: String, timestamp: Int64?) in
            Self.signedHeaders(body, timestamp: timestamp ?? UTCTime.now.millisecondsSinceEpoch / 1000, secret: secret)
        }
        let commit = String(repeating: "a", count: 40)
        let body = "{\"ref\":\"refs/heads/main\",\"before\":\"\(String(repeating: "0", count: 40))\",\"after\":\"\(commit)\"}"
        try await app(local: false).test(.router) { client in
            try await client.execute(uri: "/v1/notify", method: .post, body: ByteBuffer(string: body)) { response in
                #expect(response.status == .unauthorized)
            }
            try await client.execute(uri: "/v1/notify", method: .post, headers: Self.signedHeaders(body, secret: "wrong"),
                                     body: ByteBuffer(string: body)) { #expect($0.status == .unauthorized) }
            let stale = UTCTime.now.millisecondsSinceEpoch / 1000 - 600
            try await client.execute(uri: "/v1/notify", method: .post, headers: signedHeaders(body, stale),
                                     body: ByteBuffer(string: body)) { #expect($0.status == .unauthorized) }
            for bad in ["not json", "{\"ref\": 1}"] {
                try await client.execute(uri: "/v1/notify", method: .post, headers: signedHeaders(bad, nil), body: ByteBuffer(string: bad)) {
                    #expect($0.status == .badRequest)
                }
            }
            let huge = "{\"pad\":\"" + String(repeating: "x", count: 70_000) + "\"}"
            try await client.execute(uri: "/v1/notify", method: .post, headers: signedHeaders(huge, nil), body: ByteBuffer(string: huge)) {
                #expect($0.status == .contentTooLarge)
            }
            #expect(runtime.announcement(since: .now - .seconds(60)) == nil, "a refused notification announces nothing")

            let headers = signedHeaders(body, nil)
            try await client.execute(uri: "/v1/notify", method: .post, headers: headers, body: ByteBuffer(string: body)) { response in
                #expect(response.status == .accepted)
                #expect(!String(buffer: response.body).contains(secret))
            }
            #expect(runtime.announcement(since: .now - .seconds(60)) == commit)
            try await client.execute(uri: "/v1/notify", method: .post, headers: headers, body: ByteBuffer(string: body)) { response in
                #expect(response.status == .unauthorized)
                #expect(String(buffer: response.body).contains("already received"))
            }
        }
        let metrics = runtime.metrics.text()
        for outcome in ["unsigned", "bad-signature", "stale", "bad-body", "too-large", "accepted", "replayed"] {
            #expect(metrics.contains("slipway_notify_requests_total{outcome=\"\(outcome)\"}"), "no count for \(outcome)")
        }
    }
}
