import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle
import SlipwayCore

/// The agent's HTTP API, served on TCP (`listen:`, loopback by default) and on a unix socket for
/// the local CLI (mode 0660). TCP serves strangers only what they may see:
///
///     GET  /healthz      ok
///     GET  /v1/status    the same JSON as `slipway status --json` (socket; TCP with api.token_file's bearer token)
///     GET  /metrics      Prometheus text
///     POST /v1/notify    signed push notification (see NotifyEndpoint)
///     POST /v1/pass      start a pass now (local CLI; unix socket only)
public enum AgentAPI {
    static func router(runtime: AgentRuntime, logger: Logger, local: Bool) -> Router<AgentRequestContext> {
        let router = Router(context: AgentRequestContext.self)
        let notify = NotifyEndpoint(runtime: runtime, logger: logger)
        // Answers until the very end of a shutdown: the API is the last service to stop.
        router.get("/healthz") { _, _ in runtime.isStopping ? "stopping\n" : "ok\n" }
        router.get("/v1/status") { request, _ -> Response in
            // Status names releases, build failures and worker texts: not for strangers on TCP.
            if !local, let refusal = StatusAccess.refusal(for: request, tokenFile: runtime.config.api.tokenFile) { return refusal }
            var report = StatusReport.build(config: runtime.config)
            if runtime.isStopping { report.agentState = "stopping" }
            let json = (try? report.json()) ?? "{}"
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: json + "\n")))
        }
        router.get("/metrics") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: .init(byteBuffer: ByteBuffer(string: runtime.metrics.text())))
        }
        router.post("/v1/notify") { request, context in await notify.handle(request, from: context.peer) }
        if local {
            router.post("/v1/pass") { _, _ -> Response in
                runtime.wake()
                return NotifyEndpoint.json(.accepted, ["status": "queued"])
            }
            // An operator's request (deploy, rollback, reload, allow-removals) from a member of the
            // slipway group, who can reach this socket (0660) but not write the state directory.
            router.post("/v1/requests") { request, _ -> Response in
                var buffer = (try? await request.body.collect(upTo: 4096)) ?? ByteBuffer()
                let body = buffer.readBytes(length: buffer.readableBytes) ?? []
                switch OperatorRequests.queue(body: body, stateDir: runtime.config.stateDir) {
                case .success(let what):
                    logger.info("operator request over the socket: \(what)")
                    runtime.wake()
                    return NotifyEndpoint.json(.accepted, ["status": "queued"])
                case .failure(let problem):
                    return NotifyEndpoint.json(.badRequest, ["error": problem.description])
                }
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
        // Each listener has its own connection budget: strangers flooding TCP cannot take the
        // CLI's socket, nor the fds a pass needs.
        func server(_ budget: ConnectionGuard.Budget) -> HTTPServerBuilder {
            .http1(configuration: .init(additionalChannelHandlers: [ConnectionGuard(budget: budget)], idleTimeout: .seconds(10)))
        }
        var services: [any Service] = []
        if let listen = config.listen {
            let budget = ConnectionGuard.Budget(listener: "HTTP API on \(listen)", limit: config.api.maxConnections, logger: logger)
            services.append(Application(
                router: router(runtime: runtime, logger: logger, local: false), server: server(budget),
                configuration: .init(address: .hostname(listen.host, port: listen.port), serverName: "slipway"),
                onServerRunning: { channel in
                    // The bound address (port 0 picks a free one), for scripts and tests.
                    let port = channel.localAddress?.port ?? listen.port
                    try? FileOps.writeAtomically(Array("\(listen.host):\(port)\n".utf8), to: config.stateDir + "/http.addr", durable: false)
                    logger.info("HTTP API listening on \(listen.host):\(port)")
                    runtime.reexecReached(.apiListening, logger: logger)
                },
                logger: logger))
        }
        unlink(config.socketPath)
        let socketBudget = ConnectionGuard.Budget(listener: "CLI socket \(config.socketPath)", limit: AgentConfig.API.socketMaxConnections, logger: logger)
        services.append(Application(
            router: router(runtime: runtime, logger: logger, local: true), server: server(socketBudget),
            configuration: .init(address: .unixDomainSocket(path: config.socketPath), serverName: "slipway"),
            onServerRunning: { _ in
                chmod(config.socketPath, 0o660)
                if let group = getgrnam("slipway") { chown(config.socketPath, getuid(), group.pointee.gr_gid) }
                if config.listen == nil { runtime.reexecReached(.apiListening, logger: logger) }
            },
            logger: logger))
        return services
    }
}
