import Foundation

/// The one way Slipway writes JSON that people read (state, release records, worker tables,
/// `status --json`): pretty, keys sorted (stable diffs), slashes as they are.
public enum JSONFiles {
    public static func encode<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value)
    }
}
