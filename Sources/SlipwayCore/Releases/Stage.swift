/// The named stages of a deploy, in order. Logs, `status`, release records and docs all use
/// these words, so an operator reads the same story everywhere.
public enum Stage: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    case fetch, build, `switch`, reload, verify, prune

    /// A deploy runs these, in this order. `reload` and `verify` run when the backend has
    /// workers (`backend.command`): a rolling reload onto the new release, then health checks.
    public static let deploy: [Stage] = [.fetch, .build, .switch, .reload, .verify, .prune]
    /// A rollback is the same flow with the new release swapped for a kept one: no fetch, no build.
    public static let rollback: [Stage] = [.switch, .reload, .verify]

    public var description: String { rawValue }
}
