/// Renders an app's nginx server block from its manifest. Pure: the same manifest always gives
/// the same bytes, so "did the config change?" is a byte comparison and an unchanged deploy
/// never reloads nginx. A deploy itself needs no reload at all: every path goes through the
/// `current` symlink, resolved by nginx on each request.
public enum NginxSite {
    /// The file Slipway owns in `sites_dir`; it never touches other files there.
    public static func fileName(for app: AppName) -> String { "slipway-\(app).conf" }

    public static func isOwnedFile(_ name: String) -> Bool {
        name.hasPrefix("slipway-") && name.hasSuffix(".conf") && AppName(String(name.dropFirst(8).dropLast(5))) != nil
    }

    /// Hashed asset names, immutable by construction: `-` or `.` then, before the extension,
    /// 8+ lowercase hex digits (webpack's and rollup's contenthash), 8 base32 characters
    /// (esbuild: `main-VWVP5UOZ.js`), or 8 base64url characters mixing upper case, lower case and
    /// a digit, `_` or `-` (Vite 5 / Rollup 4: `index-B4x_kQ2a.js`). A word such as
    /// `-MyWidget` is not taken for a hash; `frontend.serve.immutable` names what this cannot know.
    public static let hashedAsset = #"[.-]([0-9a-f]{8,}|[A-Z2-7]{8}|(?=[A-Za-z0-9_-]{0,7}[0-9_-])(?=[A-Za-z0-9_-]{0,7}[A-Z])(?=[A-Za-z0-9_-]{0,7}[a-z])[A-Za-z0-9_-]{8})\.[A-Za-z0-9]+$"#

    /// - Parameters:
    ///   - appRoot: `<apps_root>/<app>`, nginx's root for the server: every location below tries
    ///     paths under `current/frontend` or the asset archive only, never the app dir itself.
    ///   - archive: the directory (relative to `appRoot`) holding the files of every kept release.
    ///   - upstream: the backend's socket, for `serve.api`; a unix path is absolute.
    public static func render(app: AppName, serve: Serve, appRoot: String, archive: String, upstream: Upstream?, source: String) -> String {
        let variable = "slipway_" + String(app.value.map { $0 == "-" ? "_" : $0 }) + "_connection"
        var lines: [String] = [
            "# Written by Slipway for app \(app) from \(source); do not edit: it is rewritten on every change.",
        ]
        if serve.api != nil {
            lines += [
                "map $http_upgrade $\(variable) {",
                "    default upgrade;",
                "    ''      close;",
                "}",
                "",
            ]
        }
        let upstreamName = "slipway_" + String(app.value.map { $0 == "-" ? "_" : $0 }) + "_workers"
        if serve.api != nil, let upstream {
            lines += [
                "upstream \(upstreamName) {",
                "    # The same socket twice: a request whose connection a draining worker closed as it",
                "    # accepted it is retried once, on a fresh connection, which a live worker takes.",
                "    server \(upstream.serverAddress) max_fails=0;",
                "    server \(upstream.serverAddress) max_fails=0;",
                "}",
                "",
            ]
        }
        let current = "/current/frontend"
        lines += [
            "server {",
            "    listen \(serve.listen);",
            "    server_name \(serve.serverNames.joined(separator: " "));",
            "    root \(quoted(appRoot));",
            "    index index.html;",
            "    # No symlink below the release's frontend is followed (one to /etc/passwd or another",
            "    # app's files is never served); `current` itself is Slipway's link to the release.",
            "    disable_symlinks on from=$document_root\(current);",
            "",
        ]
        lines += ImmutablePaths.locations(serve.immutable, archive: archive)
        lines += [
            "    # Hashed assets never change: cache them for a year. They are looked up in the kept",
            "    # releases' files first (current's among them), so a browser still holding an older",
            "    # index.html loads its chunks, and a switch of `current` between try_files' stat and",
            "    # the open cannot turn a kept asset into a 404; then in `current` itself.",
            "    location ~ \"\(hashedAsset)\" {",
        ] + ImmutablePaths.body(archive: archive) + [
            "    }",
            "    location @current_asset {",
            ImmutablePaths.cachedForAYear,
            "        try_files \(current)$uri =404;",
            "    }",
            "    # HTML is revalidated on every load, so a deploy is seen at once.",
            "    location ~ \"\\.html?$\" {",
            "        add_header Cache-Control \"no-cache\";",
            "        try_files \(current)$uri =404;",
            "    }",
            "    # Any other file: the current release's, else a kept release's (an old page's own chunks,",
            "    # whatever their names), else 404 (never index.html served as JavaScript).",
            "    location ~ \"\\.[A-Za-z0-9]+$\" {",
            "        add_header Cache-Control \"no-cache\";",
            "        try_files \(current)$uri @archive_file;",
            "    }",
            "    # The archive is Slipway's own link to its kept trees: symlinks are checked only below it.",
            "    location @archive_file {",
            "        add_header Cache-Control \"no-cache\";",
            "        disable_symlinks on from=$document_root/\(archive);",
            "        try_files /\(archive)$uri =404;",
            "    }",
        ]
        if serve.spa {
            lines += [
                "    # Navigation (paths without an extension): the page, or the single-page app's index.html.",
                "    location / {",
                "        add_header Cache-Control \"no-cache\";",
                "        try_files \(current)$uri \(current)$uri/index.html @index;",
                "    }",
                "    location @index {",
                "        add_header Cache-Control \"no-cache\";",
                "        try_files \(current)/index.html =404;",
                "    }",
            ]
        } else {
            lines += [
                "    location / {",
                "        add_header Cache-Control \"no-cache\";",
                "        try_files \(current)$uri \(current)$uri/index.html =404;",
                "    }",
            ]
        }
        if let api = serve.api, upstream != nil {
            let seconds = max(1, api.readTimeout.components.seconds)
            lines += [
                "    # The backend's workers, through the socket the agent owns (WebSockets included).",
                "    location ^~ \(api.path) {",
                "        proxy_pass http://\(upstreamName);",
                "        proxy_next_upstream error timeout;",
                "        proxy_next_upstream_tries 2;",
                "        proxy_http_version 1.1;",
                "        proxy_set_header Upgrade $http_upgrade;",
                "        proxy_set_header Connection $\(variable);",
                "        proxy_set_header Host $host;",
                "        proxy_set_header X-Real-IP $remote_addr;",
                "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
                "        proxy_set_header X-Forwarded-Proto $scheme;",
                "        proxy_set_header X-Forwarded-Host $host;",
                "        proxy_read_timeout \(seconds)s;",
                "    }",
            ]
        }
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }

    public enum Upstream: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unix(path: String)

        var proxyPass: String {
            switch self {
            case .tcp: return "http://" + serverAddress
            case .unix(let path): return "http://unix:\(path):"
            }
        }

        /// The address as an `upstream` block's `server` names it.
        var serverAddress: String {
            switch self {
            case .tcp(let host, let port):
                let connect = host == "0.0.0.0" ? "127.0.0.1" : host == "::" ? "::1" : host
                return connect.contains(":") ? "[\(connect)]:\(port)" : "\(connect):\(port)"
            case .unix(let path): return "unix:\(path)"
            }
        }
    }

    static func quoted(_ path: String) -> String {
        var result = "\""
        for character in path {
            if character == "\\" || character == "\"" { result.append("\\") }
            result.append(character)
        }
        return result + "\""
    }
}
