import Foundation

/// Where every process of one build step, migrate step or worker lives, so that they all end
/// together whatever they do to get away (`setsid`, `env -i`, a double fork): a cgroup v2 of its
/// own, emptied at once with `cgroup.kill`. Where the host has no writable cgroup2, builds and
/// migrate steps run below a child subreaper instead (`ChildProcess.spawnShell`), and workers
/// end with their process group: `slipway status` says which.
final class Containment: Sendable {
    enum Mechanism: Sendable, Equatable, CustomStringConvertible {
        /// Under this cgroup2 directory (the agent's own delegated cgroup, or `<cgroup2>/slipway`).
        case cgroup(String)
        /// No writable cgroup2 (or `SLIPWAY_CONTAINMENT=subreaper`): each build and migrate step
        /// runs below a child subreaper that kills whatever is left when the step ends; workers
        /// end with their process group.
        case subreaper
        /// Process groups only (what a non-root agent uses: its steps run as itself).
        case processGroup

        var description: String {
            switch self {
            case .cgroup(let base): return "cgroup v2 (\(base))"
            case .subreaper:
                return "a child subreaper (PR_SET_CHILD_SUBREAPER; no writable cgroup v2): builds and migrate steps leave nothing behind, "
                    + "workers end with their process group"
            case .processGroup: return "process groups only (a process that leaves its session can outlive a build)"
            }
        }
    }

    /// `SLIPWAY_CONTAINMENT=subreaper` in the agent's environment forces the fallback on a host
    /// that has cgroup v2 (to try it); anything else is detected.
    static let mechanism: Mechanism = ProcessInfo.processInfo.environment["SLIPWAY_CONTAINMENT"] == "subreaper" ? .subreaper : detect()

    /// This containment's cgroup directory; nil with process groups only.
    let directory: String?

    private init(directory: String?) {
        self.directory = directory
    }

    /// A fresh, empty containment for one process tree; `label` names it (`build`, `w0`...).
    static func make(_ label: String, mechanism: Mechanism = Containment.mechanism) -> Containment {
        guard case .cgroup(let base) = mechanism else { return Containment(directory: nil) }
        let path = "\(base)/\(label)-\(getpid())-\(String(UInt64.random(in: 0...UInt64.max), radix: 36))"
        guard mkdir(path, 0o755) == 0 else { return Containment(directory: nil) }
        return Containment(directory: path)
    }

    /// A worker's containment a previous image of this agent made (a re-exec, issue 19).
    static func adopt(directory: String) -> Containment {
        Containment(directory: directory)
    }

    /// `argv` started so that its first act, still as root and before it runs anything of the
    /// app's, is to move itself into this containment; everything it starts is born inside.
    func wrap(_ argv: [String]) -> [String] {
        guard let directory else { return argv }
        return ["/bin/sh", "-c", "echo $$ > '\(directory)/cgroup.procs' || exit 125; exec \"$@\"", "slipway-contain"] + argv
    }

    /// Kills everything still in the containment and removes it; returns once it is empty
    /// (or after `timeout`, leaving it for the next pass's clean-up).
    func end(timeout: Duration = .seconds(5)) {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline, !endStep() { usleep(10_000) }
    }

    /// `end` for an actor or a task: it waits by suspending, so an actor's other callers are
    /// answered meanwhile. A cancelled caller still waits (blocking) for the group to go.
    func end(timeout: Duration = .seconds(5)) async {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline, !endStep() {
            do { try await Task.sleep(for: .milliseconds(10)) } catch { usleep(10_000) }
        }
    }

    /// One step of ending: kills what is left, or removes the empty group; true once it is gone.
    private func endStep() -> Bool {
        guard let directory else { return true }
        if Self.isEmpty(directory) { return rmdir(directory) == 0 || errno == ENOENT }
        Self.write("1", to: directory + "/cgroup.kill")
        return false
    }

    static func recordPath(stateDir: String) -> String { stateDir + "/containment" }

    /// Writes the host's mechanism where `slipway status` (which may not run as root) reads it.
    static func record(stateDir: String) {
        guard geteuid() == 0 else { return }
        try? FileOps.makeDirectories(stateDir)
        try? FileOps.writeAtomically(Array(mechanism.description.utf8), to: recordPath(stateDir: stateDir), durable: false)
    }

    /// What the running agent recorded, if it did.
    static func recorded(stateDir: String) -> String? {
        FileOps.readFile(recordPath(stateDir: stateDir)).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The pids in it now.
    var processes: [pid_t] {
        guard let directory, let bytes = FileOps.readFile(directory + "/cgroup.procs") else { return [] }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").compactMap { pid_t($0) }
    }

    static func write(_ text: String, to path: String) {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        try? FileOps.writeAll(fd, Array(text.utf8), path: path)
        close(fd)
    }

    static func isEmpty(_ directory: String) -> Bool {
        guard let bytes = FileOps.readFile(directory + "/cgroup.procs") else { return true }
        return bytes.allSatisfy { $0 == 0x0a }
    }

    /// The cgroup2 mount (from /proc/self/mountinfo) and a directory below it the agent may make
    /// children in: its own cgroup when systemd delegated it (`Delegate=yes`), else `slipway/`
    /// at the top (a root agent outside systemd, or a hybrid host's `/sys/fs/cgroup/unified`).
    static func detect() -> Mechanism {
        guard let mount = cgroup2Mount() else { return .subreaper }
        var candidates: [String] = []
        if let own = cgroup(of: "self"), own != "/" { candidates.append(mount + own) }
        candidates.append(mount + "/slipway")
        for base in candidates {
            if mkdir(base, 0o755) != 0 && errno != EEXIST { continue }
            let probe = "\(base)/probe-\(getpid())"
            guard mkdir(probe, 0o755) == 0 || errno == EEXIST else { continue }
            let killable = access(probe + "/cgroup.kill", W_OK) == 0
            rmdir(probe)
            if killable { return .cgroup(base) }
        }
        return .subreaper
    }

    static func cgroup2Mount() -> String? {
        guard let bytes = FileOps.readFile("/proc/self/mountinfo") else { return nil }
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            // `id parent major:minor root mountpoint options... - fstype source superoptions`
            let halves = line.components(separatedBy: " - ")
            guard halves.count == 2, halves[1].hasPrefix("cgroup2 ") else { continue }
            let fields = halves[0].split(separator: " ")
            if fields.count > 4 { return String(fields[4]) }
        }
        return nil
    }

    /// The cgroup v2 path of `process` (a pid, or `self`), below the cgroup2 mount: the `0::`
    /// line of /proc/<process>/cgroup.
    static func cgroup(of process: String) -> String? {
        guard let bytes = FileOps.readFile("/proc/\(process)/cgroup", limit: 4096) else { return nil }
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where line.hasPrefix("0::") {
            return String(line.dropFirst(3))
        }
        return nil
    }
}
