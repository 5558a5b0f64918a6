/// Turns a manifest file's text into a validated `Manifest`, or into every diagnostic it earns.
public enum ManifestDecoder {
    static let topLevelKeys = ["app", "source", "hosts", "releases", "shared", "env", "build_timeout", "frontend", "backend", "migrate"]

    public static func decode(_ text: String, file: String) -> Result<Manifest, Diagnostics> {
        FieldReader.decodeDocument(text, file: file) { root, reader in decode(root, reader: reader) }
    }

    static func decode(_ root: YAMLNode, reader: FieldReader) -> Manifest? {
        guard let top = reader.fields(of: root, named: "the manifest", known: topLevelKeys) else { return nil }

        let app = top.required("app", example: "platform").flatMap { node -> AppName? in
            guard let text = reader.string(node, "app") else { return nil }
            guard let name = AppName(text) else {
                reader.report("app name '\(text)' is not valid", at: node.mark,
                              hint: "use 1 to 63 lowercase letters, digits and '-', starting with a letter or digit, like 'platform'")
                return nil
            }
            return name
        }
        let source = top.required("source", example: "{repo: /srv/git/platform.git, ref: main}").flatMap { decodeSource($0, reader) }

        var hosts: [String]?
        if let node = top["hosts"], let list = reader.stringList(node, "hosts") {
            hosts = list.map(\.0)
        }

        var keep = Manifest.defaultKeep
        if let node = top["releases"], let releases = reader.fields(of: node, named: "releases", known: ["keep"]),
           let keepNode = releases["keep"], let value = reader.integer(keepNode, "releases.keep", range: 1...100) {
            keep = value
        }

        var shared: [RelativePath] = []
        if let node = top["shared"], let list = reader.stringList(node, "shared") {
            for (text, mark) in list {
                let entry = YAMLNode(.scalar(text, plain: false), at: mark)
                guard let path = reader.path(entry, "shared entry", allowRoot: false) else { continue }
                if shared.contains(path) {
                    reader.report("shared entry '\(path)' is listed twice", at: mark)
                } else {
                    shared.append(path)
                }
            }
        }

        let env = top["env"].map { decodeEnv($0, reader) } ?? []

        var buildTimeout = Manifest.defaultBuildTimeout
        if let node = top["build_timeout"], let value = reader.duration(node, "build_timeout", atLeast: .seconds(1)) {
            buildTimeout = value
        }

        let frontend = top["frontend"].flatMap { node -> Manifest.Frontend? in
            guard let fields = reader.fields(of: node, named: "frontend", known: ["build", "output", "serve"]) else { return nil }
            let build = fields["build"].flatMap { reader.nonEmptyString($0, "frontend.build") }
            let serve = fields["serve"].flatMap { ServeDecoder.decode($0, reader) }
            guard let output = fields.required("output", example: "dist").flatMap({ reader.path($0, "frontend.output", allowRoot: false) }) else {
                return nil
            }
            return Manifest.Frontend(build: build, output: output, serve: serve)
        }

        let backend = top["backend"].flatMap { BackendDecoder.decode($0, reader) }
        let migrate = top["migrate"].flatMap { MigrateDecoder.decode($0, reader) }
        if let node = top["migrate"], top["backend"] == nil {
            reader.report("migrate steps run in the backend's directory, but the manifest has no 'backend'", at: node.mark,
                          hint: "add a 'backend' section (its 'dir' holds the migration scripts) or remove 'migrate'")
        }

        if let frontend, let backend, !backend.dir.isRoot, frontend.output == backend.dir {
            reader.report("frontend.output and backend.dir are the same directory '\(backend.dir)'", at: root.mark,
                          hint: "publish the frontend build to its own directory, like 'dist'")
        }

        if let api = frontend?.serve?.api, backend?.workers?.listen == nil, let node = top["frontend"] {
            reader.report("frontend.serve.api proxies \(api.path) to backend.listen, which is not set", at: node.mark,
                          hint: "add 'listen: 127.0.0.1:3000' and a 'command' to the backend, or remove 'api'")
        }

        if top["frontend"] == nil && top["backend"] == nil {
            reader.report("the manifest declares neither 'frontend' nor 'backend', so there is nothing to deploy", at: root.mark,
                          hint: "add 'backend: {dir: .}' to publish the source tree, or a 'frontend' with its 'output'")
        }
        if !shared.isEmpty, top["backend"] == nil, let node = top["shared"] {
            reader.report("'shared' directories are linked into the backend, but the manifest has no 'backend'", at: node.mark,
                          hint: "add a 'backend' section or remove 'shared'")
        }

        guard let app, let source else { return nil }
        return Manifest(app: app, source: source, hosts: hosts, keep: keep, shared: shared, env: env,
                        buildTimeout: buildTimeout, frontend: frontend, backend: backend, migrate: migrate)
    }

    static func decodeSource(_ node: YAMLNode, _ reader: FieldReader) -> Manifest.Source? {
        guard let fields = reader.fields(of: node, named: "source", known: ["repo", "ref"]) else { return nil }
        let repo = fields.required("repo", example: "/srv/git/platform.git").flatMap { reader.repoLocation($0, "source.repo") }
        let ref = fields.required("ref", example: "main").flatMap { node -> GitRef? in
            guard let text = reader.nonEmptyString(node, "source.ref") else { return nil }
            guard let ref = GitRef(text) else {
                reader.report("source.ref '\(text)' is neither a full commit id nor a valid tag or branch name", at: node.mark,
                              hint: "write a 40-character commit id, a tag like 'v1.2.0' or a branch like 'main'")
                return nil
            }
            return ref
        }
        guard let repo, let ref else { return nil }
        return Manifest.Source(repo: repo, ref: ref)
    }

    static func decodeEnv(_ node: YAMLNode, _ reader: FieldReader) -> [Manifest.EnvVar] {
        guard case .mapping(let pairs) = node.content else {
            reader.report("env must be a mapping of NAME: value, not \(node.kindDescription)", at: node.mark)
            return []
        }
        var result: [Manifest.EnvVar] = []
        for pair in pairs {
            guard EnvName.isValid(pair.key) else {
                reader.report("env name '\(pair.key)' is not a valid variable name", at: pair.keyMark,
                              hint: "use letters, digits and '_', not starting with a digit, like NODE_ENV")
                continue
            }
            if EnvName.isReserved(pair.key) {
                reader.report("env name '\(pair.key)' is reserved for Slipway", at: pair.keyMark, hint: "choose another name")
                continue
            }
            if pair.value.isNull {
                result.append(.init(name: pair.key, value: ""))
            } else if let value = reader.string(pair.value, "env.\(pair.key)") {
                result.append(.init(name: pair.key, value: value))
            }
        }
        return result.sorted { $0.name < $1.name }
    }
}

/// Which repository locations a manifest may name.
enum SourceLocation {
    static func isAcceptable(_ text: String) -> Bool {
        if text.unicodeScalars.contains(where: { $0.value < 0x20 || $0 == " " }) { return false }
        if text.hasPrefix("/") { return !text.split(separator: "/").contains("..") }
        for scheme in ["file://", "https://", "http://", "ssh://", "git://"] where text.hasPrefix(scheme) {
            return text.count > scheme.count
        }
        // scp-like ssh: user@host:path
        if let at = text.firstIndex(of: "@"), let colon = text.firstIndex(of: ":"), at < colon, !text.hasPrefix("-") {
            return true
        }
        return false
    }
}

/// Environment variable names: what POSIX shells accept, minus the ones Slipway sets itself.
public enum EnvName {
    public static func isValid(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.utf8.count <= 255 else { return false }
        func word(_ s: Unicode.Scalar) -> Bool { s.isASCII && (s.properties.isAlphabetic || s == "_" || ("0"..."9").contains(s)) }
        return word(first) && !("0"..."9").contains(first) && name.unicodeScalars.allSatisfy(word)
    }

    public static func isReserved(_ name: String) -> Bool {
        name.hasPrefix("SLIPWAY_") || ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET"].contains(name)
    }
}
