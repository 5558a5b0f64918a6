/// The named stages of a deploy, in order. Logs, `status`, release records and docs all use
/// these words, so an operator reads the same story everywhere.
public enum Stage: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    case fetch, build, expand, `switch`, reload, verify, contract, prune

    /// A deploy runs these, in this order. `expand` and `contract` run when the manifest has a
    /// `migrate` section (on a host left out of `migrate.hosts`, expand is the wait for
    /// `migrate.check`); `reload` and `verify` when the backend has workers (`backend.command`).
    public static let deploy: [Stage] = [.fetch, .build, .expand, .switch, .reload, .verify, .contract, .prune]
    /// A rollback is the same flow with the new release swapped for a kept one: no fetch, no
    /// build, no migrations (a kept release's expand already ran; contract never runs backwards).
    public static let rollback: [Stage] = [.switch, .reload, .verify]

    public var description: String { rawValue }
}
