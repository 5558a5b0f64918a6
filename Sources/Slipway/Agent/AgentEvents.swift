import Foundation
import SlipwayCore

/// What a pass is doing, as it happens, in the stage words logs and `status` use. The running
/// agent streams these as JSON lines on `GET /v1/events` (unix socket), which is how
/// `slipway deploy --wait` follows a deploy live.
public struct AgentEvent: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable {
        case passStarted = "pass-started"
        case stage
        case deploy
        /// A rolling reload outside a deploy (an env_file change, `slipway reload`, an agent restart).
        case reload
        case passFinished = "pass-finished"
        /// The first line of an event stream: the subscription is live.
        case subscribed
    }

    public var event: Kind
    public var at: UTCTime
    public var app: String?
    public var stage: Stage?
    /// For stages: started, done, failed. For deploys: succeeded, failed.
    public var state: String?
    public var milliseconds: Int64?
    public var release: String?
    /// For deploy events: "rollback" when the run was a switch back to a kept release (nil: a deploy).
    public var action: String?
    public var error: String?
    public var log: String?
    public var commit: String?
    public var converged: Bool?
    public var unsettled: [String]?

    public init(_ event: Kind, app: String? = nil, stage: Stage? = nil, state: String? = nil) {
        self.event = event
        self.at = .now
        self.app = app
        self.stage = stage
        self.state = state
    }

    public var jsonLine: String {
        let encoder = JSONEncoder.sorted
        return (try? String(decoding: encoder.encode(self), as: UTF8.self)).map { $0 + "\n" } ?? ""
    }
}

/// Fans events out to whoever is listening; nobody listening costs nothing.
public final class EventHub: Sendable {
    private let subscribers = Mutex<[UUID: AsyncStream<AgentEvent>.Continuation]>([:])

    public init() {}

    public func publish(_ event: AgentEvent) {
        for continuation in subscribers.withLock({ Array($0.values) }) { continuation.yield(event) }
    }

    public func subscribe() -> AsyncStream<AgentEvent> {
        let id = UUID()
        let (stream, continuation) = AsyncStream.makeStream(of: AgentEvent.self, bufferingPolicy: .bufferingNewest(1000))
        continuation.onTermination = { [weak self] _ in self?.subscribers.withLock { _ = $0.removeValue(forKey: id) } }
        subscribers.withLock { $0[id] = continuation }
        return stream
    }
}
