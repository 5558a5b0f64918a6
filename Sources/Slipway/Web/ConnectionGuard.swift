import Logging
import NIOCore
import NIOHTTPTypes

/// Bounds what clients can hold of the agent, one guard per listener (TCP and the CLI's socket
/// count separately, so a flood of strangers on TCP never locks the operator out):
///
/// - at most `limit` connections are open at once; one over it is closed as soon as it is
///   accepted, before a byte is read, so a flood costs the agent one fd for an instant each;
/// - a request's head must arrive within `headerTimeout` of the connection opening or of the
///   previous response: slow and half-open clients are closed early, not after the idle timeout.
///
/// Without these, ~1,100 slow loopback connections took every fd under systemd's default limit
/// and passes failed ("Too many open files").
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// Shared by every connection of one listener.
    final class Budget: Sendable {
        let listener: String
        let limit: Int
        let headerTimeout: TimeAmount
        private let open = Mutex(0)
        private let refusals: RateLimitedLog

        init(listener: String, limit: Int, headerTimeout: TimeAmount = .seconds(5), logger: Logger) {
            self.listener = listener
            self.limit = limit
            self.headerTimeout = headerTimeout
            refusals = RateLimitedLog(logger: logger, interval: .seconds(60))
        }

        var openConnections: Int { open.withLock { $0 } }

        func tryOpen() -> Bool {
            let admitted = open.withLock { count in
                guard count < limit else { return false }
                count += 1
                return true
            }
            if !admitted {
                refusals.warning(key: listener, "\(listener): \(limit) connections are open; closing new ones until some end")
            }
            return admitted
        }

        func close() {
            open.withLock { $0 -= 1 }
        }
    }

    private let budget: Budget
    private var admitted = false
    private var headerDeadline: Scheduled<Void>?

    init(budget: Budget) {
        self.budget = budget
    }

    func handlerAdded(context: ChannelHandlerContext) {
        guard budget.tryOpen() else {
            context.close(promise: nil)
            return
        }
        admitted = true
        armHeaderDeadline(context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        headerDeadline?.cancel()
        headerDeadline = nil
        if admitted {
            admitted = false
            budget.close()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) {
            headerDeadline?.cancel()
            headerDeadline = nil
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let isEnd = if case .end = unwrapOutboundIn(data) { true } else { false }
        context.write(data, promise: promise)
        // A kept-alive connection gets the same time for its next request's head.
        if isEnd { armHeaderDeadline(context) }
    }

    private func armHeaderDeadline(_ context: ChannelHandlerContext) {
        headerDeadline?.cancel()
        let channel = context.channel
        headerDeadline = context.eventLoop.scheduleTask(in: budget.headerTimeout) {
            channel.close(promise: nil)
        }
    }
}
