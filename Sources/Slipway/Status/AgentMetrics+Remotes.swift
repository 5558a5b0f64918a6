import SlipwayCore

extension AgentMetrics {
    /// A server offered a host key that known_hosts does not have for it (refused, never learned).
    func hostKeyChanged(_ endpoint: String) {
        registry.makeCounter(descriptor: Self.name("git_host_key_changed", unit: "total",
                                                   help: "Connections refused because the server's host key differs from known_hosts."),
                             labels: [("remote", endpoint)]).increment()
    }

    /// One connection to a remote (ls, and a download only when a tip moved).
    func remoteConnected(_ remote: RemoteURL) {
        registry.makeCounter(descriptor: Self.name("git_connections", unit: "total", help: "Connections made to git remotes."),
                             labels: [("remote", Self.label(remote))]).increment()
    }

    /// A connection that downloaded objects because a tip had moved.
    func remoteFetched(_ remote: RemoteURL) {
        registry.makeCounter(descriptor: Self.name("git_fetches", unit: "total", help: "Fetches from git remotes that downloaded (a tip had moved)."),
                             labels: [("remote", Self.label(remote))]).increment()
    }

    /// `host:port`, never the path or account: enough to tell servers apart, nothing more.
    static func label(_ remote: RemoteURL) -> String {
        remote.transport == .local ? "local" : remote.endpoint
    }
}
