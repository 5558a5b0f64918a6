import Foundation
import Hummingbird
import Logging
import SlipwayCore

/// `POST /v1/notify`: a signed push notification from the post-receive hook or `slipway notify`.
/// Verified (HMAC, timestamp within 5 minutes, never the same signature twice), bounded (64 KiB),
/// validated (JSON `{ref, before, after, pushed_at}`); only then does it wake the agent. Every
/// refusal is logged, without the secret, and counted by outcome.
struct NotifyEndpoint: Sendable {
    let runtime: AgentRuntime
    let logger: Logger
    let seen = Mutex<[String: Int64]>([:])
    /// One refusal line per client per minute, with a count: a flood of bad requests cannot flood the log.
    let refusals: RateLimitedLog

    static let maxBody = 64 * 1024

    struct Payload: Decodable {
        var ref: String
        var before: String
        var after: String
    }

    init(runtime: AgentRuntime, logger: Logger) {
        self.runtime = runtime
        self.logger = logger
        refusals = RateLimitedLog(logger: logger, interval: .seconds(60))
    }

    func handle(_ request: Request, from peer: String) async -> Response {
        let outcome: String
        let response: Response
        (outcome, response) = await evaluate(request, from: peer)
        runtime.metrics.notifyRequest(outcome: outcome)
        return response
    }

    private func evaluate(_ request: Request, from peer: String) async -> (String, Response) {
        let refuse = { (outcome: String, status: HTTPResponse.Status, message: String) in
            self.refuse(outcome, status, message, from: peer)
        }
        guard let secretFile = runtime.config.notifySecretFile else {
            return refuse("not-configured", .forbidden, "push notifications are not enabled on this agent (notify.secret_file)")
        }
        guard let secret = FileOps.readFile(secretFile).map(Self.trimmed), !secret.isEmpty else {
            logger.error("cannot read notify.secret_file \(secretFile); refusing notifications")
            return refuse("no-secret", .internalServerError, "the agent cannot read its notification secret")
        }
        let body: [UInt8]
        do {
            var buffer = try await request.body.collect(upTo: Self.maxBody)
            body = buffer.readBytes(length: buffer.readableBytes) ?? []
        } catch {
            return refuse("too-large", .contentTooLarge, "the body is over \(Self.maxBody) bytes")
        }
        let timestamp = request.headers[.init(NotifyAuth.timestampHeader)!]
        let signature = request.headers[.init(NotifyAuth.signatureHeader)!]
        let now = UTCTime.now.millisecondsSinceEpoch / 1000
        let verdict = NotifyAuth.verify(body: body, timestamp: timestamp, signature: signature, secret: secret, now: now)
        guard verdict == .valid, let signature else {
            return refuse(verdict.outcome, .unauthorized, "the notification is not signed correctly (\(verdict.outcome))")
        }
        guard remember(signature, now: now) else {
            return refuse("replayed", .unauthorized, "this notification was already received")
        }
        guard let payload = try? JSONDecoder().decode(Payload.self, from: Data(body)),
              payload.ref.hasPrefix("refs/"), Self.isCommitID(payload.before), Self.isCommitID(payload.after) else {
            return refuse("bad-body", .badRequest, "the body must be JSON {ref, before, after, pushed_at} with 40-hex commit ids")
        }
        let tracked = "refs/heads/\(runtime.config.manifests.branch)"
        guard payload.ref == tracked else {
            logger.debug("notification for \(payload.ref) ignored; this agent tracks \(tracked)")
            return ("ignored", Self.json(.accepted, ["status": "ignored", "reason": "this agent tracks \(tracked)"]))
        }
        guard runtime.announce(commit: payload.after) else {
            logger.debug("push notification for \(payload.after.prefix(12)), which a pass has already read")
            return ("accepted", Self.json(.accepted, ["status": "already seen"]))
        }
        logger.info("push notification: \(tracked) moved to \(payload.after.prefix(12))")
        return ("accepted", Self.json(.accepted, ["status": "queued"]))
    }

    /// Remembers a signature for the replay window; false when it was seen already.
    private func remember(_ signature: String, now: Int64) -> Bool {
        seen.withLock { seen in
            if seen.count > 10_000 { seen = seen.filter { $0.value > now } }
            if let expiry = seen[signature], expiry > now { return false }
            seen[signature] = now + NotifyAuth.window * 2
            return true
        }
    }

    private func refuse(_ outcome: String, _ status: HTTPResponse.Status, _ message: String, from peer: String) -> (String, Response) {
        refusals.warning(key: peer, "refused a push notification from \(peer) (\(outcome)): \(message)")
        return (outcome, Self.json(status, ["error": message]))
    }

    static func json(_ status: HTTPResponse.Status, _ object: [String: String]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return Response(status: status, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(bytes: Array(data) + [0x0A])))
    }

    static func trimmed(_ bytes: [UInt8]) -> [UInt8] {
        var bytes = bytes
        while let last = bytes.last, last == 0x0A || last == 0x0D || last == 0x20 { bytes.removeLast() }
        return bytes
    }

    static func isCommitID(_ text: String) -> Bool {
        text.count == 40 && text.allSatisfy(\.isHexDigit)
    }
}
