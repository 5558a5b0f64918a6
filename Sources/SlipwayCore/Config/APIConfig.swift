extension AgentConfig {
    /// `api:`: what the HTTP API accepts. TCP serves strangers only `/healthz`, `/metrics` and
    /// `POST /v1/notify`; everything else there needs the bearer token in `token_file`.
    public struct API: Sendable, Equatable {
        /// Concurrent TCP connections at most; one over it is closed at once.
        public var maxConnections: Int = API.defaultMaxConnections
        /// A file holding the bearer token that opens `/v1/status` over TCP (remote dashboards);
        /// nil: status is served on the unix socket only.
        public var tokenFile: String?

        public static let defaultMaxConnections = 128
        /// The CLI's socket has its own, separate budget.
        public static let socketMaxConnections = 64

        public init() {}
    }

    static func decodeAPI(_ node: YAMLNode, reader: FieldReader) -> API {
        var api = API()
        guard let fields = reader.fields(of: node, named: "api", known: ["max_connections", "token_file"]) else { return api }
        if let value = fields["max_connections"].flatMap({ reader.integer($0, "api.max_connections", range: 1...10_000) }) {
            api.maxConnections = value
        }
        if let node = fields["token_file"], let text = reader.nonEmptyString(node, "api.token_file") {
            if text.hasPrefix("/") {
                api.tokenFile = text
            } else {
                reader.report("api.token_file must be an absolute path, not '\(text)'", at: node.mark, hint: "for example /etc/slipway/api.token")
            }
        }
        return api
    }
}
