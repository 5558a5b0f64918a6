import CLibYAML

/// Why a document could not be read as YAML, and where.
public struct YAMLError: Error, Sendable, Equatable {
    public var mark: SourceMark
    public var message: String

    public init(_ message: String, at mark: SourceMark) {
        self.message = message
        self.mark = mark
    }
}

/// Turns libyaml's parser events into a `YAMLNode` tree.
///
/// Manifests come from whoever can push to the manifests repo, so the parser is defensive:
/// aliases are refused outright (no alias bombs), nesting depth, scalar size, node count and
/// input size are bounded, and only one document is accepted. Every refusal is an error with
/// a position, never a crash or a hang.
public struct YAMLParser: Sendable {
    public struct Limits: Sendable {
        public var maxInputBytes = 1 << 20
        public var maxDepth = 64
        public var maxScalarBytes = 64 << 10
        public var maxNodes = 100_000

        public init() {}
    }

    public var limits: Limits

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Parses one YAML document. An empty document is an error: a manifest must say something.
    public func parse(_ text: String) throws(YAMLError) -> YAMLNode {
        var bytes = Array(text.utf8)
        if bytes.count > limits.maxInputBytes {
            throw YAMLError("the file is \(bytes.count) bytes; at most \(limits.maxInputBytes) are accepted", at: SourceMark(line: 1, column: 1))
        }
        // Editors on some systems start UTF-8 files with a byte-order mark; it carries no meaning.
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        if bytes.isEmpty { bytes = [0x0A] }

        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            throw YAMLError("the YAML parser could not be initialised (out of memory?)", at: SourceMark(line: 1, column: 1))
        }
        defer { yaml_parser_delete(&parser) }

        return try bytes.withUnsafeBufferPointer { (buffer) throws(YAMLError) -> YAMLNode in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
            var builder = TreeBuilder(limits: limits)
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else {
                    throw Self.parserError(parser)
                }
                defer { yaml_event_delete(&event) }
                if try builder.consume(event) { break }
            }
            return try builder.finish()
        }
    }

    private static func parserError(_ parser: yaml_parser_t) -> YAMLError {
        let problem = parser.problem.map { String(cString: $0) } ?? "invalid YAML"
        let context = parser.context.map { String(cString: $0) }
        let mark = SourceMark(line: Int(parser.problem_mark.line) + 1, column: Int(parser.problem_mark.column) + 1)
        if let context {
            return YAMLError("\(problem) \(context)", at: mark)
        }
        return YAMLError(problem, at: mark)
    }
}

/// Builds the node tree from the event stream, enforcing the limits as it goes so a hostile
/// document is refused at the first event that crosses one.
///
/// Frames are mutated in place on the stack (never popped, changed and pushed back), so adding a
/// value is O(1) and a document is built in time linear in its size: a copied frame per key made
/// a 60,000-key mapping take over a minute.
private struct TreeBuilder {
    struct Frame {
        enum Kind { case sequence, mapping }
        let kind: Kind
        let start: SourceMark
        var items: [YAMLNode] = []
        var pairs: [YAMLPair] = []
        var pendingKey: (String, SourceMark)?
        var seen: Set<String> = []

        init(_ kind: Kind, at start: SourceMark) {
            self.kind = kind
            self.start = start
        }
    }

    let limits: YAMLParser.Limits
    var stack: [Frame] = []
    var root: YAMLNode?
    var documents = 0
    var nodes = 0

    init(limits: YAMLParser.Limits) {
        self.limits = limits
    }

    /// Returns true at the end of the stream.
    mutating func consume(_ event: yaml_event_t) throws(YAMLError) -> Bool {
        let mark = SourceMark(line: Int(event.start_mark.line) + 1, column: Int(event.start_mark.column) + 1)
        switch event.type {
        case YAML_STREAM_END_EVENT:
            return true
        case YAML_DOCUMENT_START_EVENT:
            documents += 1
            if documents > 1 {
                throw YAMLError("a second YAML document starts here; a manifest holds exactly one", at: mark)
            }
        case YAML_ALIAS_EVENT:
            throw YAMLError("YAML aliases (*name) are not supported in Slipway files; write the value out", at: mark)
        case YAML_SCALAR_EVENT:
            let scalar = event.data.scalar
            try checkTag(scalar.tag, at: mark)
            if Int(scalar.length) > limits.maxScalarBytes {
                throw YAMLError("this value is \(scalar.length) bytes long; at most \(limits.maxScalarBytes) are accepted", at: mark)
            }
            let text = scalar.value.map { pointer in
                String(decoding: UnsafeBufferPointer(start: pointer, count: Int(scalar.length)), as: UTF8.self)
            } ?? ""
            let plain = scalar.style == YAML_PLAIN_SCALAR_STYLE
            try add(YAMLNode(.scalar(text, plain: plain), at: mark))
        case YAML_SEQUENCE_START_EVENT:
            try checkTag(event.data.sequence_start.tag, at: mark)
            try push(Frame(.sequence, at: mark), at: mark)
        case YAML_MAPPING_START_EVENT:
            try checkTag(event.data.mapping_start.tag, at: mark)
            try push(Frame(.mapping, at: mark), at: mark)
        case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
            guard let frame = stack.popLast() else { break }
            switch frame.kind {
            case .sequence: try add(YAMLNode(.sequence(frame.items), at: frame.start))
            case .mapping: try add(YAMLNode(.mapping(frame.pairs), at: frame.start))
            }
        default:
            break
        }
        return false
    }

    func finish() throws(YAMLError) -> YAMLNode {
        guard let root, !root.isNull else {
            throw YAMLError("the file is empty; expected a mapping such as 'app: NAME'", at: SourceMark(line: 1, column: 1))
        }
        return root
    }

    private func checkTag(_ tag: UnsafeMutablePointer<yaml_char_t>?, at mark: SourceMark) throws(YAMLError) {
        guard let tag else { return }
        let name = String(cString: tag)
        // A lone "!" is the non-specific tag libyaml reports for quoted scalars in some cases.
        if name == "!" { return }
        throw YAMLError("YAML tags ('\(name)') are not supported in Slipway files; remove the tag", at: mark)
    }

    private mutating func push(_ frame: Frame, at mark: SourceMark) throws(YAMLError) {
        if stack.count >= limits.maxDepth {
            throw YAMLError("nesting is deeper than \(limits.maxDepth) levels", at: mark)
        }
        try countNode(at: mark)
        stack.append(frame)
    }

    private mutating func countNode(at mark: SourceMark) throws(YAMLError) {
        nodes += 1
        if nodes > limits.maxNodes {
            throw YAMLError("the document has more than \(limits.maxNodes) values", at: mark)
        }
    }

    private mutating func add(_ node: YAMLNode) throws(YAMLError) {
        if case .scalar = node.content { try countNode(at: node.mark) }
        guard !stack.isEmpty else {
            root = node
            return
        }
        let top = stack.count - 1
        switch stack[top].kind {
        case .sequence:
            stack[top].items.append(node)
        case .mapping:
            if let (key, keyMark) = stack[top].pendingKey {
                stack[top].pairs.append(YAMLPair(key: key, keyMark: keyMark, value: node))
                stack[top].pendingKey = nil
                return
            }
            guard case .scalar(let key, _) = node.content else {
                throw YAMLError("a mapping key must be a plain name, not \(node.kindDescription)", at: node.mark)
            }
            if key == "<<" {
                throw YAMLError("YAML merge keys ('<<') are not supported in Slipway files; write the keys out", at: node.mark)
            }
            guard stack[top].seen.insert(key).inserted else {
                throw YAMLError("duplicate key '\(key)'; each key may appear once in a mapping", at: node.mark)
            }
            stack[top].pendingKey = (key, node.mark)
        }
    }
}
