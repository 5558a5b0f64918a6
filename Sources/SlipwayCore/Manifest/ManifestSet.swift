/// All manifests of one commit (or one `validate` run), checked together: each file on its
/// own, then across files (one manifest per app).
public struct ManifestSet: Sendable {
    /// A manifest file's path (as shown in messages) and its text.
    public struct File: Sendable {
        public var path: String
        public var text: String
        /// Set (to the size in bytes) when the file was too large to read: it is refused unread.
        public var tooLarge: Int?

        public init(path: String, text: String, tooLarge: Int? = nil) {
            self.path = path
            self.text = text
            self.tooLarge = tooLarge
        }
    }

    public struct Entry: Sendable, Equatable {
        public var path: String
        public var manifest: Manifest
        /// Where each scalar field is in the file (`source.repo`, `backend.listen`, ...), for
        /// host checks that locate their refusals (`HostPolicy`).
        public var marks: [String: SourceMark] = [:]

        public init(path: String, manifest: Manifest, marks: [String: SourceMark] = [:]) {
            self.path = path
            self.manifest = manifest
            self.marks = marks
        }
    }

    public struct Invalid: Sendable, Equatable {
        public var path: String
        /// The app the file names, when that much could be read: its last good release stays deployed.
        public var app: AppName?
        public var diagnostics: Diagnostics
    }

    public private(set) var valid: [AppName: Entry] = [:]
    public private(set) var invalid: [Invalid] = []

    public var allDiagnostics: [Diagnostic] { invalid.flatMap(\.diagnostics.items) }

    public init(files: [File]) {
        var decoded: [(File, Result<Manifest, Diagnostics>, AppName?, SourceMark)] = []
        for file in files.sorted(by: { $0.path < $1.path }) {
            if let size = file.tooLarge {
                invalid.append(Invalid(path: file.path, app: nil, diagnostics: Diagnostics([Diagnostic(
                    file: file.path, at: SourceMark(line: 1, column: 1), "the file is \(size) bytes; a manifest may be at most \(YAMLParser.Limits().maxInputBytes)",
                    hint: "one app per file, and no data in manifests")])))
                continue
            }
            let result = ManifestDecoder.decode(file.text, file: file.path)
            let (name, mark) = Self.declaredApp(in: file.text)
            decoded.append((file, result, name, mark))
        }

        var byApp: [AppName: [(path: String, mark: SourceMark)]] = [:]
        for (file, _, name, mark) in decoded {
            if let name { byApp[name, default: []].append((file.path, mark)) }
        }

        for (file, result, name, mark) in decoded {
            if let name, let claims = byApp[name], claims.count > 1 {
                let others = claims.filter { $0.path != file.path }.map { "\($0.path):\($0.mark.line):\($0.mark.column)" }
                let duplicate = Diagnostic(file: file.path, at: mark, "app '\(name)' is also declared in \(others.joined(separator: ", "))",
                                           hint: "each app has exactly one manifest; rename one of them or remove the copy")
                var items = [duplicate]
                if case .failure(let diagnostics) = result { items += diagnostics.items }
                invalid.append(Invalid(path: file.path, app: name, diagnostics: Diagnostics(items)))
                continue
            }
            switch result {
            case .success(let manifest):
                valid[manifest.app] = Entry(path: file.path, manifest: manifest, marks: Self.scalarMarks(in: file.text))
            case .failure(let diagnostics):
                invalid.append(Invalid(path: file.path, app: name, diagnostics: diagnostics))
            }
        }
    }

    /// The `app:` a file declares, read leniently, so an invalid manifest can still be tied to its
    /// app (and its last good release kept) even when the YAML does not parse at all.
    static func declaredApp(in text: String) -> (AppName?, SourceMark) {
        if let root = try? YAMLParser().parse(text), case .mapping(let pairs) = root.content {
            if let pair = pairs.first(where: { $0.key == "app" }), case .scalar(let value, _) = pair.value.content {
                return (AppName(value), pair.value.mark)
            }
            return (nil, SourceMark(line: 1, column: 1))
        }
        // Unparseable: look for a top-level `app: name` line.
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where line.hasPrefix("app:") {
            let value = line.dropFirst(4).split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]
            let name = String(value).trimmingWhitespace().trimmingCharacters(in: ["\"", "'"])
            let column = 5 + value.prefix(while: { $0 == " " || $0 == "\t" }).count
            return (AppName(name), SourceMark(line: index + 1, column: column))
        }
        return (nil, SourceMark(line: 1, column: 1))
    }

    /// The marks of the scalars at the first two levels of a manifest, by dotted key.
    static func scalarMarks(in text: String) -> [String: SourceMark] {
        guard let root = try? YAMLParser().parse(text), case .mapping(let pairs) = root.content else { return [:] }
        var marks: [String: SourceMark] = [:]
        for pair in pairs {
            marks[pair.key] = pair.value.mark
            if case .mapping(let inner) = pair.value.content {
                for field in inner { marks[pair.key + "." + field.key] = field.value.mark }
            }
        }
        return marks
    }

    /// Whether a path names a manifest: every `*.yaml` / `*.yml` file is one app.
    public static func isManifestPath(_ path: String) -> Bool {
        path.hasSuffix(".yaml") || path.hasSuffix(".yml")
    }
}
