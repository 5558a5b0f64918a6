import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import SlipwayCore

/// A small HTTP/1.1 client on SwiftNIO's codec, for the CLI and hooks talking to an agent: over
/// TCP (`http://host:port`) or the agent's unix socket. One request per connection, bounded by a
/// timeout. Streams the response body to `onBody` as it arrives (for following a deploy live).
public struct AgentClient: Sendable {
    public enum Endpoint: Sendable, CustomStringConvertible {
        case tcp(host: String, port: Int)
        case unix(path: String)

        /// `http://127.0.0.1:7070`, `unix:/var/lib/slipway/state/agent.sock`, or a bare socket path.
        public init?(_ text: String) {
            if text.hasPrefix("unix:") {
                self = .unix(path: String(text.dropFirst(5)))
            } else if text.hasPrefix("/") {
                self = .unix(path: text)
            } else if text.hasPrefix("http://") {
                let rest = text.dropFirst(7).split(separator: "/", maxSplits: 1).first.map(String.init) ?? ""
                guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]) else {
                    guard !rest.isEmpty else { return nil }
                    self = .tcp(host: rest, port: 80)
                    return
                }
                self = .tcp(host: String(rest[..<colon]).trimmingCharacters(in: ["[", "]"]), port: port)
            } else {
                return nil
            }
        }

        public var description: String {
            switch self {
            case .tcp(let host, let port): return "http://\(host):\(port)"
            case .unix(let path): return "unix:\(path)"
            }
        }
    }

    public struct Response: Sendable {
        public var status: Int
        public var body: String
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public let endpoint: Endpoint
    public let timeout: Duration

    public init(endpoint: Endpoint, timeout: Duration = .seconds(5)) {
        self.endpoint = endpoint
        self.timeout = timeout
    }

    public func request(_ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: [UInt8] = [],
                        onBody: (@Sendable (String) -> Void)? = nil) async throws -> Response {
        let group = MultiThreadedEventLoopGroup.singleton
        let promise = group.next().makePromise(of: Response.self)
        let collector = ResponseCollector(promise: promise, onBody: onBody)
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(.milliseconds(max(1, timeout.milliseconds)))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(collector)
                }
            }
        let channel: Channel
        do {
            switch endpoint {
            case .tcp(let host, let port): channel = try await bootstrap.connect(host: host, port: port).get()
            case .unix(let path): channel = try await bootstrap.connect(unixDomainSocketPath: path).get()
            }
        } catch {
            let failure = Failure(description: "cannot reach the agent at \(endpoint): \(error)")
            promise.fail(failure)
            throw failure
        }
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
        head.headers.add(name: "Host", value: "slipway")
        head.headers.add(name: "Connection", value: "close")
        head.headers.add(name: "Content-Length", value: "\(body.count)")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if !body.isEmpty { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil) }
        do {
            try await channel.writeAndFlush(HTTPClientRequestPart.end(nil)).get()
        } catch {
            promise.fail(error)
            channel.close(promise: nil)
            throw Failure(description: "sending to the agent at \(endpoint) failed: \(error)")
        }
        let timeout = self.timeout
        let timer = channel.eventLoop.scheduleTask(in: .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)) {
            promise.fail(Failure(description: "\(endpoint) did not answer within \(DurationText.format(timeout))"))
            channel.close(promise: nil)
        }
        defer { timer.cancel() }
        do {
            let response = try await promise.futureResult.get()
            channel.close(promise: nil)
            return response
        } catch {
            channel.close(promise: nil)
            throw error
        }
    }
}

/// Gathers one response; completes on its end (or fails if the connection closes first).
private final class ResponseCollector: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart

    let promise: EventLoopPromise<AgentClient.Response>
    let onBody: (@Sendable (String) -> Void)?
    var status = 0
    var body = ""

    init(promise: EventLoopPromise<AgentClient.Response>, onBody: (@Sendable (String) -> Void)?) {
        self.promise = promise
        self.onBody = onBody
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
        case .body(let buffer):
            let text = String(buffer: buffer)
            if let onBody { onBody(text) } else { body += text }
        case .end:
            promise.succeed(.init(status: status, body: body))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(AgentClient.Failure(description: "the agent closed the connection before answering"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }
}
