/// One entry of `frontend.serve.immutable`: a URL prefix (`/assets/`) or a glob (`/static/*.js`,
/// `/media/**`), for layouts whose file names the hashed-asset pattern cannot recognise.
public enum ImmutablePath: Sendable, Equatable, CustomStringConvertible {
    case prefix(String)
    case glob(String)

    /// Only characters that mean nothing to nginx's parser or inside its quoted regex, so an
    /// entry can never end the directive or widen the match.
    public static func parse(_ text: String) -> ImmutablePath? {
        let allowed = text.unicodeScalars.allSatisfy {
            $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "/._~-*?".unicodeScalars.contains($0))
        }
        guard text.hasPrefix("/"), allowed, !text.split(separator: "/").contains(".."), text.utf8.count <= 256 else { return nil }
        return text.contains("*") || text.contains("?") ? .glob(text) : .prefix(text)
    }

    public var description: String {
        switch self {
        case .prefix(let text), .glob(let text): return text
        }
    }

    /// The glob as an anchored regex: `**` any characters, `*` any within one segment, `?` one.
    var regex: String {
        var result = "^"
        let chars = Array(description)
        var index = 0
        while index < chars.count {
            let c = chars[index]
            if c == "*", index + 1 < chars.count, chars[index + 1] == "*" {
                result += ".*"
                index += 2
                continue
            }
            switch c {
            case "*": result += "[^/]*"
            case "?": result += "[^/]"
            case ".": result += "\\."
            default: result.append(c)
            }
            index += 1
        }
        return result + "$"
    }
}

/// The server block's locations for `frontend.serve.immutable`: before the hashed-asset one,
/// with the same caching and the same order (the frontend archive, then `current`).
enum ImmutablePaths {
    static func locations(_ paths: [ImmutablePath], archive: String) -> [String] {
        guard !paths.isEmpty else { return [] }
        var lines = ["    # frontend.serve.immutable: paths this app's build never changes in place."]
        for path in paths {
            switch path {
            case .prefix(let prefix): lines.append("    location ^~ \(prefix) {")
            case .glob: lines.append("    location ~ \"\(path.regex)\" {")
            }
            lines += body(archive: archive) + ["    }"]
        }
        return lines
    }

    /// The header of everything immutable: these locations, the hashed-asset one and `@current_asset`.
    static let cachedForAYear = "        add_header Cache-Control \"public, max-age=31536000, immutable\";"

    /// The inside of every immutable location, these and the hashed-asset one: cached for a
    /// year, looked up in the frontend archive first, then in `current` (`@current_asset`).
    static func body(archive: String) -> [String] {
        [
            cachedForAYear,
            "        disable_symlinks on from=$document_root/\(archive);",
            "        try_files /\(archive)$uri @current_asset;",
        ]
    }
}
