import Foundation
import SlipwayCore

/// Which build of the agent runs, since when, and how it got there (issue 19):
/// `state_dir/agent.json`, written when an image starts and after each re-exec attempt, read
/// by `slipway status`. The process start and the image start differ after a re-exec
/// (`systemctl reload slipway`): the pid, and every worker, stayed.
public struct AgentImage: Sendable, Codable, Equatable {
    public var version: String
    public var pid: Int32
    /// When the agent process started (before any re-exec).
    public var processStartedAt: UTCTime
    /// When the image running now started.
    public var imageStartedAt: UTCTime
    /// Re-execs this process has done, and how many of them failed (the previous image went on).
    public var reexecs: Int
    public var failedReexecs: Int
    /// The last re-exec: how it went, in one line.
    public var lastReexec: String?
    /// The last successful re-exec, step by step (milliseconds after SIGUSR2).
    public var lastReexecTimeline: ReexecTimeline?

    public init(version: String, pid: Int32 = getpid(), startedAt: UTCTime = .now) {
        self.version = version
        self.pid = pid
        processStartedAt = startedAt
        imageStartedAt = startedAt
        reexecs = 0
        failedReexecs = 0
    }

    public static func path(stateDir: String) -> String { stateDir + "/agent.json" }

    public static func load(stateDir: String) -> AgentImage? {
        FileOps.readFile(path(stateDir: stateDir), limit: 65536).flatMap { try? JSONDecoder().decode(AgentImage.self, from: Data($0)) }
    }

    func save(stateDir: String) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let bytes = try? encoder.encode(self) else { return }
        try? FileOps.writeAtomically(Array(bytes), to: Self.path(stateDir: stateDir), mode: 0o644, durable: false)
    }

    /// "agent 0.1.0, image started 2026-12-01T13:00:00Z, 3 re-execs (0 failed)"
    public var summary: String {
        var text = "agent \(version), image started \(imageStartedAt.iso8601)"
        if imageStartedAt != processStartedAt { text += " (process \(processStartedAt.iso8601))" }
        text += ", \(reexecs) re-exec\(reexecs == 1 ? "" : "s")"
        if failedReexecs > 0 { text += " (\(failedReexecs) failed)" }
        if let lastReexec { text += "; last: \(lastReexec)" }
        return text
    }
}
