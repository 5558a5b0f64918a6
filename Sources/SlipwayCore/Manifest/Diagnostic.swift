/// One problem found in a file, phrased for a person: where, what is wrong, and what would be right.
///
/// Renders as `FILE:LINE:COL: message — hint`, the form editors and terminals make clickable.
public struct Diagnostic: Error, Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var mark: SourceMark
    public var message: String
    public var hint: String?

    public init(file: String, at mark: SourceMark, _ message: String, hint: String? = nil) {
        self.file = file
        self.mark = mark
        self.message = message
        self.hint = hint
    }

    public var description: String {
        let location = "\(file):\(mark.line):\(mark.column): \(message)"
        guard let hint else { return location }
        return "\(location) — \(hint)"
    }
}

/// Several diagnostics at once: validation reports everything it finds, not just the first.
public struct Diagnostics: Error, Sendable, Equatable, CustomStringConvertible {
    public var items: [Diagnostic]

    public init(_ items: [Diagnostic]) {
        self.items = items
    }

    public var description: String {
        items.map(\.description).joined(separator: "\n")
    }
}
