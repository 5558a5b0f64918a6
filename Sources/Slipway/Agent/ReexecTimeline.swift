import Foundation

/// When each step of a re-exec happened (issue 19), from SIGUSR2 to the new image serving its
/// API: the old image marks its steps and hands them over in the record, the new image adds its
/// own, logs them in one line and keeps them in `state_dir/agent.json` (`lastReexecTimeline`), so
/// a slow re-exec says where its time went.
public struct ReexecTimeline: Sendable, Codable, Equatable {
    /// The steps in order, old image first. A step is marked when it is over.
    public enum Step: String, Sendable, Codable, CaseIterable {
        /// The pass in progress was cancelled and is over (the old image's loop is free).
        case passOver = "pass_over"
        /// `agent --handover-check` answered (it runs from SIGUSR2 on, beside the cancelling).
        case checked
        case hooksStopped = "hooks_stopped"
        case frozen
        /// The record is written and its fds kept open: just before `execve` (the new image
        /// hears when from `SLIPWAY_HANDOVER_EXEC_AT`).
        case exec
        /// The new image's first line of Swift (the dynamic loader and the runtime are before it).
        case imageStarted = "image_started"
        /// The record is read and the agent's runtime made.
        case recordRead = "record_read"
        case adopted
        /// The HTTP API listens again (TCP, or the CLI's socket when `listen: off`).
        case apiListening = "api_listening"
        /// `READY=1` went to systemd again.
        case ready
    }

    /// Unix time (seconds) of SIGUSR2.
    public var requestedAt: Double
    /// Milliseconds from SIGUSR2 to the end of each step marked, by `Step` name.
    public var milliseconds: [String: Int] = [:]

    public init(requestedAt: Double) {
        self.requestedAt = requestedAt
    }

    public mutating func mark(_ step: Step, at time: Double = Date().timeIntervalSince1970) {
        if milliseconds[step.rawValue] == nil { milliseconds[step.rawValue] = Int(((time - requestedAt) * 1000).rounded()) }
    }

    func isMarked(_ step: Step) -> Bool { milliseconds[step.rawValue] != nil }

    /// The new image serves its API and systemd heard READY=1: nothing more to mark.
    var isComplete: Bool { isMarked(.apiListening) && isMarked(.ready) }

    /// "pass_over 3, checked 120, …, ready 410 ms after SIGUSR2"
    public var summary: String {
        let steps = Step.allCases.compactMap { step in milliseconds[step.rawValue].map { "\(step.rawValue) \($0)" } }
        return steps.joined(separator: ", ") + " ms after SIGUSR2"
    }
}
