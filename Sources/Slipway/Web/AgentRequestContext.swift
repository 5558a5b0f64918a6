import Hummingbird
import NIOCore

/// The request context of the agent's API: Hummingbird's basic one plus the peer's address, so
/// refusals can be counted and rate-limited per client.
struct AgentRequestContext: RequestContext, RemoteAddressRequestContext {
    var coreContext: CoreRequestContextStorage
    let remoteAddress: SocketAddress?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    /// The client's IP address, or "local" for the unix socket.
    var peer: String {
        remoteAddress?.ipAddress ?? "local"
    }
}
