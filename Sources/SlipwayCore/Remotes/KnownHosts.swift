import Crypto

/// An OpenSSH `known_hosts` file, read strictly: plain and hashed (`|1|salt|hash`) host
/// patterns, `[host]:port` for ports other than 22, `*`/`?` wildcards, `!` negation and
/// `@revoked` keys. `@cert-authority` lines are kept apart and never trust a key by themselves
/// (libgit2 1.5 does not hand certificates to Slipway).
public struct KnownHosts: Sendable {
    public struct Entry: Sendable {
        public enum Marker: Sendable { case none, revoked, certAuthority }
        public var marker: Marker
        public var patterns: [String]
        public var key: SSHPublicKey
        /// 1-based line in the file, for messages.
        public var line: Int
    }

    public private(set) var entries: [Entry] = []
    /// Lines that could not be read, with their number: reported by `slipway check`, never guessed at.
    public private(set) var unreadable: [Int] = []

    public init(_ text: String) {
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.drop(while: { $0 == " " || $0 == "\t" })
            if line.isEmpty || line.hasPrefix("#") { continue }
            var fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            var marker = Entry.Marker.none
            if fields.first == "@revoked" { marker = .revoked; fields.removeFirst() }
            else if fields.first == "@cert-authority" { marker = .certAuthority; fields.removeFirst() }
            guard fields.count >= 3, let blob = Base64.decode(fields[2]), let key = SSHPublicKey(blob: blob), key.type == fields[1] else {
                unreadable.append(index + 1)
                continue
            }
            entries.append(Entry(marker: marker, patterns: fields[0].split(separator: ",").map(String.init), key: key, line: index + 1))
        }
    }

    /// What the file says about `key` offered by `host` on `port`.
    public func verdict(host: String, port: Int, key: SSHPublicKey) -> HostKeyVerdict {
        let name = Self.name(host: host, port: port)
        let forHost = entries.filter { $0.marker != .certAuthority && Self.matches($0.patterns, name: name) }
        if let revoked = forHost.first(where: { $0.marker == .revoked && $0.key == key }) { return .revoked(line: revoked.line) }
        let known = forHost.filter { $0.marker == .none }
        if let trusted = known.first(where: { $0.key == key }) { return .trusted(line: trusted.line) }
        if known.isEmpty { return .unknown }
        return .changed(known: known.map { .init(type: $0.key.type, fingerprint: $0.key.fingerprint, line: $0.line) })
    }

    /// How known_hosts writes a host: `host` on port 22, `[host]:port` otherwise.
    public static func name(host: String, port: Int) -> String {
        port == 22 ? host : "[\(host)]:\(port)"
    }

    static func matches(_ patterns: [String], name: String) -> Bool {
        var matched = false
        for pattern in patterns {
            if pattern.hasPrefix("|1|") {
                if hashedMatches(pattern, name: name) { matched = true }
            } else if pattern.hasPrefix("!") {
                if wildcardMatches(Array(pattern.dropFirst().lowercased().utf8), Array(name.lowercased().utf8)) { return false }
            } else if wildcardMatches(Array(pattern.lowercased().utf8), Array(name.lowercased().utf8)) {
                matched = true
            }
        }
        return matched
    }

    /// `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`, as `ssh-keygen -H` writes it.
    static func hashedMatches(_ pattern: String, name: String) -> Bool {
        let parts = pattern.split(separator: "|", omittingEmptySubsequences: false)
        guard parts.count == 4, let salt = Base64.decode(parts[2]), let hash = Base64.decode(parts[3]), salt.count == 20 else { return false }
        let mac = HMAC<Insecure.SHA1>.authenticationCode(for: Array(name.utf8), using: SymmetricKey(data: salt))
        return Array(mac) == hash
    }

    static func wildcardMatches(_ pattern: [UInt8], _ text: [UInt8]) -> Bool {
        var p = 0, t = 0, star = -1, mark = 0
        while t < text.count {
            if p < pattern.count && (pattern[p] == UInt8(ascii: "?") || pattern[p] == text[t]) {
                p += 1; t += 1
            } else if p < pattern.count && pattern[p] == UInt8(ascii: "*") {
                star = p; mark = t; p += 1
            } else if star >= 0 {
                p = star + 1; mark += 1; t = mark
            } else {
                return false
            }
        }
        while p < pattern.count && pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.count
    }
}

/// Whether a server's host key may be trusted.
public enum HostKeyVerdict: Sendable, Equatable {
    case trusted(line: Int)
    /// The host has no entry: refused, and the operator is told how to add one after checking it.
    case unknown
    /// The host has entries, none with this key: refused loudly, never learned.
    case changed(known: [KnownKey])
    /// The key is marked `@revoked`.
    case revoked(line: Int)

    public struct KnownKey: Sendable, Equatable {
        public var type: String
        public var fingerprint: String
        public var line: Int
    }
}
