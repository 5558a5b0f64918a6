import Foundation
import Logging
import SlipwayCore

/// The groups an agent killed with `kill -9` left behind (`LeftoverGroup`), and the group of a
/// worker such an agent left serving.
extension Containment {
    /// The directory every group of this host is made in; nil without cgroups.
    static var base: String? {
        guard case .cgroup(let base) = mechanism else { return nil }
        return base
    }

    /// What `sweepLeftovers` did, by group name.
    struct Sweep: Equatable, Sendable {
        var killed: [String] = []
        var removed: [String] = []
    }

    /// Cleans up what agents that are gone left in this host's base: a dead agent's build or
    /// migrate step is killed with everything in its group (a census of markers in /proc misses
    /// a process forked while it runs; the group does not), and every empty group of theirs is
    /// removed. A worker's group that still holds its worker is left: the worker serves until the
    /// next agent's own are up, and that agent ends its group then (`ofWorker`). A killed group
    /// still not empty after `patience` is left for the next agent to remove.
    static func sweepLeftovers(in base: String? = Containment.base, patience: Duration = .seconds(1)) -> Sweep {
        guard let base, let names = try? FileManager.default.contentsOfDirectory(atPath: base) else { return Sweep() }
        var sweep = Sweep()
        var dying: [String] = []
        // One look per agent pid, and none into a live agent's groups: a host's many workers cost a readdir.
        var runs: [Int32: Bool] = [:]
        for name in names.sorted() {
            guard let group = LeftoverGroup(name: name) else { continue }
            let agentRuns = runs[group.agentPID] ?? ProcessTable.isRunning(group.agentPID)
            runs[group.agentPID] = agentRuns
            if agentRuns { continue }
            let directory = base + "/" + name
            switch group.action(agentRuns: false, isEmpty: isEmpty(directory)) {
            case .leave:
                continue
            case .kill:
                write("1", to: directory + "/cgroup.kill")
                sweep.killed.append(name)
                dying.append(name)
            case .remove:
                if rmdir(directory) == 0 { sweep.removed.append(name) }
            }
        }
        // cgroup.kill returns before the processes are gone.
        let deadline = ContinuousClock.now + patience
        while !dying.isEmpty {
            dying.removeAll { name in
                guard isEmpty(base + "/" + name), rmdir(base + "/" + name) == 0 else { return false }
                sweep.removed.append(name)
                return true
            }
            if dying.isEmpty || ContinuousClock.now >= deadline { break }
            usleep(10_000)
        }
        return sweep
    }

    /// `sweepLeftovers`, said in the log (at an agent's start).
    static func sweepLeftovers(logger: Logger) {
        let sweep = sweepLeftovers()
        if !sweep.killed.isEmpty {
            logger.notice("killed the build or migrate steps a dead agent left running", metadata: ["groups": "\(sweep.killed.joined(separator: " "))"])
        }
        if !sweep.removed.isEmpty {
            logger.info("removed the empty groups of dead agents", metadata: ["count": "\(sweep.removed.count)"])
        }
    }

    /// The group a worker of a previous agent runs in (its `/proc/<pid>/cgroup`), when it is one
    /// an agent made for a worker directly in this host's base; nil otherwise. Ended after the
    /// worker stops, so that a helper it started outside its session and process group ends too.
    /// The app cannot name another group there: the kernel keeps that file, and a process moves
    /// only into a group it may write, and every group here is root's.
    static func ofWorker(_ pid: pid_t, base: String? = Containment.base) -> Containment? {
        guard let base, let mount = cgroup2Mount(), let own = cgroup(of: String(pid)) else { return nil }
        let path = mount + own
        guard let slash = path.lastIndex(of: "/"), String(path[..<slash]) == base,
              case .worker = LeftoverGroup(name: String(path[path.index(after: slash)...]))?.kind else { return nil }
        return adopt(directory: path)
    }
}
