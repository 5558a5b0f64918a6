import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle
import SlipwayCore

/// The agent's HTTP API, served on TCP (`listen:`, loopback by default) and on a unix socket for
/// the local CLI (mode 0660):
///
///     GET  /healthz      ok
///     GET  /v1/status    the same JSON as `slipway status --json`
///     GET  /metrics      Prometheus text
///     POST /v1/notify    signed push notification (see NotifyEndpoint)
///     POST /v1/pass      start a pass now (local CLI; unix socket only)
public enum AgentAPI {
    static func router(runtime: AgentRuntime, logger: Logger, local: Bool) -> Router<BasicRequestContext> {
        let router = Router()
        let notify = NotifyEndpoint(runtime: runtime, logger: logger)
        router.get("/healthz") { _, _ in "ok\n" }
        router.get("/v1/status") { _, _ -> Response in
            let json = (try? StatusReport.build(config: runtime.config).json()) ?? "{}"
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: json + "\n")))
        }
        router.get("/metrics") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: .init(byteBuffer: ByteBuffer(string: runtime.metrics.text())))
        }
        router.post("/v1/notify") { request, _ in await notify.handle(request) }
        if local {
            router.post("/v1/pass") { _, _ -> Response in
                runtime.wake()
                return NotifyEndpoint.json(.accepted, ["status": "queued"])
            }
            // JSON lines as the agent works, until the client goes away or the agent stops (an
            // open stream must not hold up the agent's graceful shutdown).
            router.get("/v1/events") { _, _ -> Response in
                let events = runtime.events.subscribe()
                let body = ResponseBody { writer in
                    try await writer.write(ByteBuffer(string: AgentEvent(.subscribed).jsonLine))
                    for await event in events.cancelOnGracefulShutdown() {
                        try await writer.write(ByteBuffer(string: event.jsonLine))
                    }
                    try await writer.finish(nil)
                }
                return Response(status: .ok, headers: [.contentType: "application/x-ndjson"], body: body)
            }
        }
        return router
    }

    /// The HTTP services to run beside the agent: TCP when configured, and the unix socket.
    public static func services(runtime: AgentRuntime, logger: Logger) -> [any Service] {
        let config = runtime.config
        let server = HTTPServerBuilder.http1(configuration: .init(idleTimeout: .seconds(10)))
        var services: [any Service] = []
        if let listen = config.listen {
            services.append(Application(
                router: router(runtime: runtime, logger: logger, local: false), server: server,
                configuration: .init(address: .hostname(listen.host, port: listen.port), serverName: "slipway"),
                onServerRunning: { channel in
                    // The bound address (port 0 picks a free one), for scripts and tests.
                    let port = channel.localAddress?.port ?? listen.port
                    try? FileOps.writeAtomically(Array("\(listen.host):\(port)\n".utf8), to: config.stateDir + "/http.addr")
                    logger.info("HTTP API listening on \(listen.host):\(port)")
                },
                logger: logger))
        }
        unlink(config.socketPath)
        services.append(Application(
            router: router(runtime: runtime, logger: logger, local: true), server: server,
            configuration: .init(address: .unixDomainSocket(path: config.socketPath), serverName: "slipway"),
            onServerRunning: { _ in
                chmod(config.socketPath, 0o660)
                if let group = getgrnam("slipway") { chown(config.socketPath, getuid(), group.pointee.gr_gid) }
            },
            logger: logger))
        return services
    }
}
