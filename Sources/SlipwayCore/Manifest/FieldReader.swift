/// Reads typed values out of a `YAMLNode` tree, collecting a `Diagnostic` for each problem
/// instead of stopping at the first, so one `validate` run shows everything that is wrong.
final class FieldReader {
    let file: String
    private var collected: [Diagnostic] = []
    private var suppressed = 0
    private var firstSuppressed: SourceMark?
    /// One file's problems shown at most: a hostile 50,000-key manifest gets 100 lines and a count.
    static let maxDiagnostics = 100

    /// Every problem found, the last line counting those past `maxDiagnostics`.
    var diagnostics: [Diagnostic] {
        guard suppressed > 0, let firstSuppressed else { return collected }
        return collected + [Diagnostic(file: file, at: firstSuppressed, "… and \(suppressed) more problems in this file", hint: "fix the ones above first")]
    }

    init(file: String) {
        self.file = file
    }

    func report(_ message: String, at mark: SourceMark, hint: String? = nil) {
        guard collected.count < Self.maxDiagnostics else {
            if firstSuppressed == nil { firstSuppressed = mark }
            suppressed += 1
            return
        }
        collected.append(Diagnostic(file: file, at: mark, message, hint: hint))
    }

    /// The fields of a mapping, with unknown keys reported (and a suggestion when one is close).
    func fields(of node: YAMLNode, named what: String, known: [String]) -> Fields? {
        guard case .mapping(let pairs) = node.content else {
            report("\(what) must be a mapping, not \(node.kindDescription)", at: node.mark)
            return nil
        }
        for pair in pairs where !known.contains(pair.key) {
            guard collected.count < Self.maxDiagnostics else {
                report("", at: pair.keyMark)  // only counted: no suggestion worth computing
                continue
            }
            let hint = Suggestion.closest(to: pair.key, among: known).map { "did you mean '\($0)'?" }
                ?? "known keys here: \(known.joined(separator: ", "))"
            report("unknown key '\(pair.key)' in \(what)", at: pair.keyMark, hint: hint)
        }
        return Fields(node: node, pairs: pairs, what: what, reader: self)
    }

    struct Fields {
        let node: YAMLNode
        let pairs: [YAMLPair]
        let what: String
        let reader: FieldReader

        subscript(key: String) -> YAMLNode? {
            guard let value = pairs.first(where: { $0.key == key })?.value, !value.isNull else { return nil }
            return value
        }

        func required(_ key: String, example: String) -> YAMLNode? {
            if let value = self[key] { return value }
            reader.report("\(what) is missing the required key '\(key)'", at: node.mark, hint: "add it, for example '\(key): \(example)'")
            return nil
        }
    }

    // MARK: Scalars

    func string(_ node: YAMLNode, _ what: String) -> String? {
        guard case .scalar(let text, _) = node.content else {
            report("\(what) must be a single value, not \(node.kindDescription)", at: node.mark)
            return nil
        }
        return text
    }

    func nonEmptyString(_ node: YAMLNode, _ what: String) -> String? {
        guard let text = string(node, what) else { return nil }
        if text.trimmingWhitespace().isEmpty {
            report("\(what) must not be empty", at: node.mark)
            return nil
        }
        return text
    }

    func integer(_ node: YAMLNode, _ what: String, range: ClosedRange<Int>) -> Int? {
        guard case .scalar(let text, let plain) = node.content, plain, let value = Int(text) else {
            report("\(what) must be a whole number, not \(Self.quote(node))", at: node.mark, hint: "for example \(range.lowerBound)")
            return nil
        }
        guard range.contains(value) else {
            report("\(what) must be between \(range.lowerBound) and \(range.upperBound), not \(value)", at: node.mark)
            return nil
        }
        return value
    }

    func bool(_ node: YAMLNode, _ what: String) -> Bool? {
        if case .scalar(let text, true) = node.content {
            if ["true", "yes", "on"].contains(text.lowercased()) { return true }
            if ["false", "no", "off"].contains(text.lowercased()) { return false }
        }
        report("\(what) must be true or false, not \(Self.quote(node))", at: node.mark)
        return nil
    }

    func duration(_ node: YAMLNode, _ what: String, atLeast minimum: Duration = .milliseconds(1)) -> Duration? {
        guard let text = string(node, what) else { return nil }
        guard let value = DurationText.parse(text) else {
            report("\(what) must be a duration, not '\(text)'", at: node.mark, hint: "write a number and a unit: 500ms, 30s, 5m, 1h")
            return nil
        }
        guard value >= minimum else {
            report("\(what) must be at least \(DurationText.format(minimum))", at: node.mark)
            return nil
        }
        return value
    }

    func path(_ node: YAMLNode, _ what: String, allowRoot: Bool) -> RelativePath? {
        guard let text = nonEmptyString(node, what) else { return nil }
        switch RelativePath.parse(text) {
        case .success(let path):
            if path.isRoot && !allowRoot {
                report("\(what) must name a subdirectory, not the tree's root", at: node.mark, hint: "for example 'dist'")
                return nil
            }
            return path
        case .failure(let problem):
            report("\(what) '\(text)' is not allowed: \(problem.explanation)", at: node.mark, hint: "use a path relative to the source tree, like 'dist' or 'server/public'")
            return nil
        }
    }

    /// A git repository location Slipway can fetch (absolute path, file/https/ssh URL, scp-like).
    func repoLocation(_ node: YAMLNode, _ what: String) -> String? {
        guard let text = nonEmptyString(node, what) else { return nil }
        guard SourceLocation.isAcceptable(text) else {
            report("\(what) '\(text)' is not a repository location Slipway can fetch", at: node.mark,
                   hint: "use an absolute path, or a file://, https:// or ssh:// URL")
            return nil
        }
        if let remote = RemoteURL(text), remote.carriesSecret {
            report("\(what) carries credentials in its URL, which would reach logs, status and the API", at: node.mark,
                   hint: "write the URL without them and add an entry to git.credentials in agent.yaml: "
                       + "{url: \(remote.transport.rawValue)://\(remote.host ?? "host")/, username: …, password_file: /etc/slipway/git-token}")
            return nil
        }
        return text
    }

    /// A list of scalars; a single scalar is refused rather than guessed at.
    func stringList(_ node: YAMLNode, _ what: String) -> [(String, SourceMark)]? {
        guard case .sequence(let items) = node.content else {
            report("\(what) must be a list, not \(node.kindDescription)", at: node.mark, hint: "write [a, b] or one '- item' per line")
            return nil
        }
        var result: [(String, SourceMark)] = []
        for item in items {
            if let text = nonEmptyString(item, "each entry of \(what)") { result.append((text, item.mark)) }
        }
        return result
    }

    static func quote(_ node: YAMLNode) -> String {
        if case .scalar(let text, _) = node.content { return "'\(text)'" }
        return node.kindDescription
    }
}

extension FieldReader {
    /// Parses `text` and runs `decode` on its tree: the value when nothing was reported, else
    /// every diagnostic (a YAML syntax error is the only one then). Shared by agent.yaml and manifests.
    static func decodeDocument<T>(_ text: String, file: String, _ decode: (YAMLNode, FieldReader) -> T?) -> Result<T, Diagnostics> {
        let root: YAMLNode
        do {
            root = try YAMLParser().parse(text)
        } catch {
            return .failure(Diagnostics([Diagnostic(file: file, at: error.mark, error.message)]))
        }
        let reader = FieldReader(file: file)
        let value = decode(root, reader)
        if let value, reader.diagnostics.isEmpty { return .success(value) }
        return .failure(Diagnostics(reader.diagnostics))
    }
}
