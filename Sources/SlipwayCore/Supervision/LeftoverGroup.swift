/// A cgroup an agent made for one build or migrate step or one worker, read back from its name
/// (`step-<agent pid>-<random>`, `w<slot>-<agent pid>-<random>`), and what a later agent does with
/// it once the agent that made it is gone. An agent removes its groups as their processes end;
/// one killed with `kill -9` leaves them behind.
public struct LeftoverGroup: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        case step
        case worker(slot: Int)
    }

    public var kind: Kind
    /// The agent that made it (its pid when it did: a re-exec keeps the pid, so it keeps its groups).
    public var agentPID: Int32

    public init(kind: Kind, agentPID: Int32) {
        self.kind = kind
        self.agentPID = agentPID
    }

    /// Nil for any name an agent does not make.
    public init?(name: String) {
        let parts = name.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, let pid = Int32(parts[1]), pid > 0, String(pid) == parts[1],
              !parts[2].isEmpty, parts[2].allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber) }) else { return nil }
        if parts[0] == "step" {
            kind = .step
        } else if parts[0].first == "w", let slot = Int(parts[0].dropFirst()), slot >= 0, "w\(slot)" == parts[0] {
            kind = .worker(slot: slot)
        } else {
            return nil
        }
        agentPID = pid
    }

    public enum Action: Equatable, Sendable {
        /// Its agent runs (or the name's pid was reused: then it is left, never guessed at).
        case leave
        /// What a dead agent's build or migration left running: killed, then removed.
        case kill
        /// Empty: removed.
        case remove
    }

    /// A step's group of a dead agent is killed: the step was abandoned with its agent, and the
    /// next pass starts it again. A worker's is only removed once empty: its worker serves until
    /// the next agent's own workers are up, and that agent stops it and its group then.
    public func action(agentRuns: Bool, isEmpty: Bool) -> Action {
        if agentRuns { return .leave }
        if isEmpty { return .remove }
        return kind == .step ? .kill : .leave
    }
}
