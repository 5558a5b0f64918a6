/// `frontend.serve`: nginx serves the frontend from `current/frontend` with this server block.
public struct Serve: Sendable, Equatable {
    /// Names as nginx's `server_name` takes them: exact, `*.wildcard`, or `~regex`.
    public var serverNames: [String]
    public var listen: ServeListen
    /// Navigation paths (no file extension) fall back to `/index.html`.
    public var spa: Bool
    public var api: API?
    /// Paths cached as immutable besides the hashed names nginx recognises: URL prefixes
    /// (`/assets/`) or globs (`/static/*.js`, `/media/**`).
    public var immutable: [ImmutablePath]

    public init(serverNames: [String], listen: ServeListen = .port(80), spa: Bool = false, api: API? = nil, immutable: [ImmutablePath] = []) {
        self.serverNames = serverNames
        self.listen = listen
        self.spa = spa
        self.api = api
        self.immutable = immutable
    }

    public struct API: Sendable, Equatable {
        /// A URL prefix, starting and ending with `/`.
        public var path: String
        public var readTimeout: Duration

        public init(path: String, readTimeout: Duration = .seconds(60)) {
            self.path = path
            self.readTimeout = readTimeout
        }
    }
}

/// nginx's `listen`: a port, or an address and a port.
public enum ServeListen: Sendable, Equatable, CustomStringConvertible {
    case port(Int)
    case address(host: String, port: Int)

    public static func parse(_ text: String) -> ServeListen? {
        if let port = Int(text) { return (1...65535).contains(port) ? .port(port) : nil }
        guard case .success(.tcp(let host, let port)) = WorkerListen.parse(text) else { return nil }
        return .address(host: host, port: port)
    }

    /// Where a client reaches what nginx binds for this `listen`, to confirm a reload took: a
    /// bare port is nginx's `0.0.0.0:port`, and a wildcard address is reached on loopback.
    public var probeAddress: (host: String, port: Int) {
        switch self {
        case .port(let port): return ("127.0.0.1", port)
        case .address("0.0.0.0", let port): return ("127.0.0.1", port)
        case .address("::", let port): return ("::1", port)
        case .address(let host, let port): return (host, port)
        }
    }

    public var description: String {
        switch self {
        case .port(let port): return "\(port)"
        case .address(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
    }
}

/// Decodes `frontend.serve`, refusing anything that could break out of the rendered directive.
enum ServeDecoder {
    static func decode(_ node: YAMLNode, _ reader: FieldReader) -> Serve? {
        guard let fields = reader.fields(of: node, named: "frontend.serve", known: ["server_name", "listen", "spa", "api", "immutable"]) else { return nil }
        var names: [String] = []
        if let nameNode = fields.required("server_name", example: "platform.example.com") {
            let entries: [(String, SourceMark)]
            if case .sequence = nameNode.content {
                entries = reader.stringList(nameNode, "frontend.serve.server_name") ?? []
            } else {
                entries = reader.nonEmptyString(nameNode, "frontend.serve.server_name").map { text in
                    text.split(separator: " ").map { (String($0), nameNode.mark) }
                } ?? []
            }
            for (name, mark) in entries {
                if isServerName(name) {
                    names.append(name)
                } else {
                    reader.report("frontend.serve.server_name '\(name)' is not a host name nginx can match", at: mark,
                                  hint: "use names like platform.example.com, *.example.com, or a regex starting with ~ (no spaces, quotes, ';', '{' or '}')")
                }
            }
        }
        var serve = Serve(serverNames: names)
        if let listenNode = fields["listen"], let text = reader.string(listenNode, "frontend.serve.listen") {
            if let listen = ServeListen.parse(text) {
                serve.listen = listen
            } else {
                reader.report("frontend.serve.listen '\(text)' is neither a port nor host:port", at: listenNode.mark, hint: "for example 80 or 127.0.0.1:8080")
            }
        }
        if let value = fields["spa"].flatMap({ reader.bool($0, "frontend.serve.spa") }) { serve.spa = value }
        if let apiNode = fields["api"], let api = reader.fields(of: apiNode, named: "frontend.serve.api", known: ["path", "read_timeout"]) {
            let path = api.required("path", example: "/api/").flatMap { node -> String? in
                guard let text = reader.nonEmptyString(node, "frontend.serve.api.path") else { return nil }
                let safe = text.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "/-_.~".unicodeScalars.contains($0)) }
                guard text.hasPrefix("/"), text.hasSuffix("/"), text.count > 1, safe, !text.contains("..") else {
                    reader.report("frontend.serve.api.path must be a URL prefix like /api/, not '\(text)'", at: node.mark,
                                  hint: "start and end it with '/', letters, digits, '-', '_', '.' and '~' only")
                    return nil
                }
                return text
            }
            let timeout = api["read_timeout"].flatMap { reader.duration($0, "frontend.serve.api.read_timeout", atLeast: .seconds(1)) }
            if let path { serve.api = Serve.API(path: path, readTimeout: timeout ?? .seconds(60)) }
        }
        if let node = fields["immutable"] {
            let entries: [(String, SourceMark)]
            if case .sequence = node.content {
                entries = reader.stringList(node, "frontend.serve.immutable") ?? []
            } else {
                entries = reader.nonEmptyString(node, "frontend.serve.immutable").map { [($0, node.mark)] } ?? []
            }
            for (text, mark) in entries {
                if let path = ImmutablePath.parse(text) {
                    serve.immutable.append(path)
                } else {
                    reader.report("frontend.serve.immutable '\(text)' is not a URL path prefix or glob", at: mark,
                                  hint: "for example /assets/ (a prefix) or /static/*.js (* within a segment, ** across); letters, digits, / . _ ~ - * ? only, no '..'")
                }
            }
        }
        return names.isEmpty ? nil : serve
    }

    static func isServerName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 253 else { return false }
        // Nothing that could end the directive or start another: no ';', braces, quotes, '#', spaces.
        let forbidden: Set<Character> = [";", "{", "}", "\"", "'", "#"]
        guard !name.contains(where: { forbidden.contains($0) || $0.isWhitespace || ($0.asciiValue ?? 0x80) < 0x21 || !$0.isASCII }) else {
            return false
        }
        if name.hasPrefix("~") { return name.count > 1 }
        return name.allSatisfy { $0.isLetter || $0.isNumber || "-.*_".contains($0) }
    }
}
