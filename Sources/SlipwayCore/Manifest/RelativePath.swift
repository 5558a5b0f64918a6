/// A path inside an app's tree that cannot escape it: relative, no `..`, no empty parts, no NUL.
/// Built only through `parse`, so holding one is proof it was checked.
public struct RelativePath: Sendable, Hashable, Codable, CustomStringConvertible, Comparable {
    /// The normalised text: components joined by `/`; `.` for the tree's root.
    public let value: String

    public static let root = RelativePath(unchecked: ".")

    private init(unchecked value: String) {
        self.value = value
    }

    public enum Problem: Error, Sendable, Equatable {
        case empty, absolute, escapes, invalidCharacter

        public var explanation: String {
            switch self {
            case .empty: return "the path is empty"
            case .absolute: return "an absolute path would leave the app's directory"
            case .escapes: return "'..' would leave the app's directory"
            case .invalidCharacter: return "the path holds a NUL or control character"
            }
        }
    }

    public static func parse(_ text: String) -> Result<RelativePath, Problem> {
        if text.isEmpty { return .failure(.empty) }
        if text.hasPrefix("/") || text.hasPrefix("~") { return .failure(.absolute) }
        if text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) { return .failure(.invalidCharacter) }
        var parts: [Substring] = []
        for part in text.split(separator: "/", omittingEmptySubsequences: true) {
            if part == ".." { return .failure(.escapes) }
            if part == "." { continue }
            parts.append(part)
        }
        return .success(parts.isEmpty ? .root : RelativePath(unchecked: parts.joined(separator: "/")))
    }

    /// For text already known to be a valid relative path (literals, stored state).
    public init?(_ text: String) {
        guard case .success(let path) = Self.parse(text) else { return nil }
        self = path
    }

    public var isRoot: Bool { value == "." }
    public var components: [String] { isRoot ? [] : value.split(separator: "/").map(String.init) }
    public var description: String { value }

    public static func < (lhs: RelativePath, rhs: RelativePath) -> Bool { lhs.value < rhs.value }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        switch Self.parse(text) {
        case .success(let path): self = path
        case .failure(let problem):
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: problem.explanation))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }
}
