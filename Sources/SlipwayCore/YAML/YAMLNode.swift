/// A position in a source file, 1-based as people read it (libyaml's marks are 0-based).
public struct SourceMark: Sendable, Hashable {
    public var line: Int
    public var column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }
}

/// One node of a parsed YAML document. Every node keeps where it stood, so validation can
/// point at the exact line and column of whatever is wrong.
public struct YAMLNode: Sendable, Equatable {
    public enum Content: Sendable, Equatable {
        /// `plain` is false for quoted and block scalars: `"5"` is a string, `5` may be a number.
        case scalar(String, plain: Bool)
        case sequence([YAMLNode])
        case mapping([YAMLPair])
    }

    public var content: Content
    public var mark: SourceMark

    public init(_ content: Content, at mark: SourceMark) {
        self.content = content
        self.mark = mark
    }

    /// What kind of node this is, in the words an error message uses.
    public var kindDescription: String {
        switch content {
        case .scalar(let text, let plain):
            if plain && Self.isNull(text) { return "null" }
            return "a scalar"
        case .sequence: return "a list"
        case .mapping: return "a mapping"
        }
    }

    /// A plain `~`, `null` or empty scalar is YAML's null.
    public var isNull: Bool {
        if case .scalar(let text, true) = content { return Self.isNull(text) }
        return false
    }

    static func isNull(_ text: String) -> Bool {
        text.isEmpty || text == "~" || text == "null" || text == "Null" || text == "NULL"
    }
}

/// A key and its value in a mapping; keys are scalars (anything else is rejected by the parser).
public struct YAMLPair: Sendable, Equatable {
    public var key: String
    public var keyMark: SourceMark
    public var value: YAMLNode

    public init(key: String, keyMark: SourceMark, value: YAMLNode) {
        self.key = key
        self.keyMark = keyMark
        self.value = value
    }
}
