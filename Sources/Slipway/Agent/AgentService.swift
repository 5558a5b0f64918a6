import Foundation
import Logging
import ServiceLifecycle
import SlipwayCore

/// The long-running agent: a pass at start, then one per `poll_interval` or whenever woken
/// (SIGHUP from `slipway deploy`/`rollback`). Wake-ups that arrive during a pass coalesce into
/// one more pass. On graceful shutdown the pass in flight is cancelled: a running build is
/// stopped, its staging removed, and `current` stays where it was.
public struct AgentService: Service {
    let config: AgentConfig
    let pollInterval: Duration
    let logger: Logger
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    public init(config: AgentConfig, logger: Logger) {
        self.config = config
        self.pollInterval = config.pollInterval
        self.logger = logger
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    public func run() async throws {
        let reconciler = Reconciler(config: config, logger: logger)
        let hangup = Self.onSignal(SIGHUP) { [wake] in wake.yield() }
        defer { hangup.cancel() }
        let ticker = Task { [wake, pollInterval] in
            while !Task.isCancelled {
                try? await Task.sleep(for: pollInterval)
                wake.yield()
            }
        }
        defer { ticker.cancel() }

        wake.yield()
        for await _ in wakeups.cancelOnGracefulShutdown() {
            let result = await cancelWhenGracefulShutdown { await reconciler.pass() }
            if result.converged {
                logger.debug("pass converged")
            } else if let error = result.error {
                logger.warning("pass failed: \(error)")
            } else {
                logger.warning("pass left \(result.unsettled.count) app(s) unsettled: \(result.unsettled.map { "\($0.app)" }.joined(separator: ", "))")
            }
        }
        logger.info("agent stopped")
    }

    static func onSignal(_ signal: Int32, _ handler: @escaping @Sendable () -> Void) -> DispatchSourceSignal {
        Foundation.signal(signal, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: signal, queue: .global())
        source.setEventHandler(handler: handler)
        source.resume()
        return source
    }
}
