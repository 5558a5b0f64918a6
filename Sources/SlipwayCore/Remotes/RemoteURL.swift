/// A repository location as Slipway reaches it: which transport, which host and port (for host
/// key checks and credentials), and which account. Parsed from `manifests.repo` and `source.repo`.
public struct RemoteURL: Sendable, Equatable, CustomStringConvertible {
    public enum Transport: String, Sendable {
        case local, ssh, https, http, git
    }

    public var transport: Transport
    /// The URL as written (credentials in it are refused before it gets here).
    public var text: String
    /// The host as the server is reached (without brackets); nil for local paths.
    public var host: String?
    /// The port from the URL, or the transport's default (ssh 22, https 443).
    public var port: Int?
    /// The account in the URL (`git` in `ssh://git@host/x` and `git@host:x`).
    public var user: String?

    public var description: String { text }

    /// `host:port`, as host key messages name a server.
    public var endpoint: String { "\(host ?? "localhost"):\(port ?? 0)" }

    public static func defaultPort(_ transport: Transport) -> Int? {
        switch transport {
        case .ssh: 22
        case .https: 443
        case .http: 80
        case .git: 9418
        case .local: nil
        }
    }

    /// Parses a location; nil when it is not one Slipway can fetch.
    public init?(_ text: String) {
        self.text = text
        if text.unicodeScalars.contains(where: { $0.value < 0x20 || $0 == " " }) || text.hasPrefix("-") { return nil }
        if text.hasPrefix("/") || text.hasPrefix("file://") {
            transport = .local
            return
        }
        for candidate in [Transport.ssh, .https, .http, .git] where text.hasPrefix(candidate.rawValue + "://") {
            transport = candidate
            let rest = text.dropFirst(candidate.rawValue.count + 3)
            let authority = rest.prefix(while: { $0 != "/" })
            guard !authority.isEmpty else { return nil }
            var hostPort = Substring(authority)
            if let at = authority.lastIndex(of: "@") {
                user = String(authority[..<at])
                hostPort = authority[authority.index(after: at)...]
            }
            guard let (host, port) = Self.hostAndPort(hostPort) else { return nil }
            self.host = host
            self.port = port ?? Self.defaultPort(candidate)
            return
        }
        // scp-like ssh: [user@]host:path, with no slash before the colon.
        guard let colon = text.firstIndex(of: ":"), !text[..<colon].contains("/") else { return nil }
        let authority = text[..<colon]
        var host = authority
        if let at = authority.lastIndex(of: "@") {
            user = String(authority[..<at])
            host = authority[authority.index(after: at)...]
        }
        guard user != nil, !host.isEmpty, text.index(after: colon) < text.endIndex else { return nil }
        transport = .ssh
        self.host = String(host.hasPrefix("[") && host.hasSuffix("]") ? host.dropFirst().dropLast() : host)
        self.port = 22
    }

    private static func hostAndPort(_ text: Substring) -> (String, Int?)? {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if rest.isEmpty { return (host, nil) }
            guard rest.hasPrefix(":"), let port = Int(rest.dropFirst()), (1...65535).contains(port) else { return nil }
            return (host, port)
        }
        guard let colon = text.lastIndex(of: ":") else { return text.isEmpty ? nil : (String(text), nil) }
        let host = String(text[..<colon])
        guard !host.isEmpty, let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        return (host, port)
    }

    /// A password or token written into the URL (`https://user:token@host/…`): refused, because
    /// a URL is logged, shown by `status` and served by the API.
    public var carriesSecret: Bool {
        guard let user else { return false }
        return user.contains(":") || (transport != .ssh && transport != .local)
    }

    /// The URL as `git.credentials` prefixes are matched against it: every ssh spelling
    /// (`git@host:path`, `ssh://git@host/path`) reads as `ssh://git@host:22/path`, so one prefix
    /// form covers them all.
    public var canonical: String {
        guard transport == .ssh else { return text }
        var path: String
        if text.hasPrefix("ssh://") {
            let rest = text.dropFirst(6)
            path = String(rest[(rest.firstIndex(of: "/") ?? rest.endIndex)...])
        } else {
            path = String(text[text.index(after: text.firstIndex(of: ":")!)...])
            if !path.hasPrefix("/") { path = "/" + path }
        }
        let host = self.host.map { $0.contains(":") ? "[\($0)]" : $0 } ?? ""
        return "ssh://\(user.map { $0 + "@" } ?? "")\(host):\(port ?? 22)\(path)"
    }
}
