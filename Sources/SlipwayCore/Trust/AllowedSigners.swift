/// git's `gpg.ssh.allowedSignersFile`: one `principals [options] key-type base64-key [comment]`
/// per line, `#` comments and blank lines allowed. Read on every pass, so rotating a key needs
/// no restart.
public struct AllowedSigners: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var principals: String
        public var key: SSHPublicKey
        /// From `namespaces="…"`; nil means any namespace.
        public var namespaces: [String]?
        public var line: Int
    }

    public var entries: [Entry]

    public static func parse(_ text: String, file: String) -> Result<AllowedSigners, Diagnostics> {
        var entries: [Entry] = []
        var problems: [Diagnostic] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = String(raw).trimmingWhitespace()
            guard !line.isEmpty, !line.hasPrefix("#") else { continue }
            let mark = SourceMark(line: index + 1, column: 1)
            let fields = tokens(line)
            guard fields.count >= 3 else {
                problems.append(Diagnostic(file: file, at: mark, "expected 'principals key-type base64-key'",
                                           hint: "for example: alice@example.com ssh-ed25519 AAAAC3Nza…"))
                continue
            }
            var cursor = 1
            var namespaces: [String]?
            var unsupported: String?
            if !fields[1].hasPrefix("ssh-") && !fields[1].hasPrefix("ecdsa-") && !fields[1].hasPrefix("sk-") {
                for option in splitOptions(fields[1]) {
                    let lower = option.lowercased()
                    if lower.hasPrefix("namespaces=") {
                        namespaces = String(option.dropFirst("namespaces=".count)).trimmingCharacters(in: ["\""]).split(separator: ",").map(String.init)
                    } else {
                        unsupported = option
                    }
                }
                cursor = 2
            }
            if let unsupported {
                problems.append(Diagnostic(file: file, at: mark, "option '\(unsupported)' is not supported by Slipway",
                                           hint: "only namespaces=\"git\" is; remove the option or the line"))
                continue
            }
            guard fields.count > cursor + 1 else {
                problems.append(Diagnostic(file: file, at: mark, "the key is missing after the principals and options"))
                continue
            }
            let type = fields[cursor]
            guard let blob = Base64.decode(fields[cursor + 1]), let key = SSHPublicKey(blob: blob) else {
                problems.append(Diagnostic(file: file, at: mark, "the \(type) key is not valid base64 key data"))
                continue
            }
            guard key.type == type else {
                problems.append(Diagnostic(file: file, at: mark, "the key says it is \(key.type), but the line says \(type)"))
                continue
            }
            entries.append(Entry(principals: fields[0], key: key, namespaces: namespaces, line: index + 1))
        }
        if !problems.isEmpty { return .failure(Diagnostics(problems)) }
        return .success(AllowedSigners(entries: entries))
    }

    /// Whitespace-separated fields, keeping quoted option values together.
    static func tokens(_ line: String) -> [String] {
        var result: [String] = [], current = "", quoted = false
        for character in line {
            if character == "\"" { quoted.toggle() }
            if (character == " " || character == "\t") && !quoted {
                if !current.isEmpty { result.append(current); current = "" }
            } else {
                current.append(character)
            }
        }
        if !current.isEmpty { result.append(current) }
        return result
    }

    static func splitOptions(_ text: String) -> [String] {
        var result: [String] = [], current = "", quoted = false
        for character in text {
            if character == "\"" { quoted.toggle() }
            if character == "," && !quoted {
                result.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        if !current.isEmpty { result.append(current) }
        return result
    }
}
