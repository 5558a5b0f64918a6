/// The named stages of a deploy, in order. Logs, `status`, release records and docs all use
/// these words, so an operator reads the same story everywhere.
public enum Stage: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    case fetch, build, `switch`, prune

    /// A deploy runs these, in this order.
    public static let deploy: [Stage] = [.fetch, .build, .switch, .prune]
    /// A rollback is the same flow with the new release swapped for a kept one: no fetch, no build.
    public static let rollback: [Stage] = [.switch]

    public var description: String { rawValue }
}
