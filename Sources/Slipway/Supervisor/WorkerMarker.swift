import Foundation
import SlipwayCore

/// Every worker carries `SLIPWAY_SUPERVISED=<state_dir>/workers/<app>` in its environment, so
/// a worker spawned after the last write of the worker table (the agent was killed in between)
/// is still found by the next agent: it is treated as an orphan (it serves until the new
/// workers are up, then it is stopped), whichever release it runs, even one pruned since.
///
/// Only session leaders count: every worker is one (the spawn makes a new session), while the
/// processes a worker starts inherit the marker but not the leadership, and go with its group.
/// An app can copy the marker into a process of its own, and so only gets its own process
/// stopped: the agent signals nothing but marked session leaders, and, when it runs as root,
/// none that runs as root (workers never do; a setuid program an app started with a copied
/// marker would).
///
/// A worker is root for the first moments of its life, though: its spawn chain (`nice`, the
/// containment's `sh`, `setpriv`) runs as root until `setpriv` drops to the app's account, and
/// it holds the app's listening socket from the spawn on. An agent killed right after a spawn
/// leaves such a process for the next agent to find (on a loaded host the chain takes tens of
/// milliseconds: the move into its cgroup waits for the kernel). So a marked process still
/// running one of the chain's programs as root is waited for, briefly; any other root process
/// is not a worker, at once.
enum WorkerMarker {
    static let variable = "SLIPWAY_SUPERVISED"

    static func value(stateDir: String, app: AppName) -> String { WorkerTable.path(stateDir: stateDir, app: app.value) }

    /// The live, marked workers of `app` on this host, as rows for the orphan list. A scan
    /// waits at most `chainPatience` in all for chains still root, however many it meets.
    static func find(stateDir: String, app: AppName) -> [WorkerTable.Worker] {
        let marker = Array("\(variable)=\(value(stateDir: stateDir, app: app))".utf8)
        let deadline = ContinuousClock.now + chainPatience
        var found: [WorkerTable.Worker] = []
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(name), pid > 1, pid != getpid(), let environ = environment(of: pid) else { continue }
            let entries = environ.split(separator: 0)
            guard entries.contains(where: { $0.elementsEqual(marker) }), ProcessTable.isSessionLeader(pid),
                  geteuid() != 0 || runsAsAccount(pid, until: deadline),
                  let start = ProcessTable.startTime(of: pid), ProcessTable.isRunning(pid, startTime: start) else { continue }
            func variable(_ key: String) -> String? {
                let prefix = Array("\(key)=".utf8)
                return entries.first { $0.starts(with: prefix) }.map { String(decoding: $0.dropFirst(prefix.count), as: UTF8.self) }
            }
            guard let release = variable("SLIPWAY_RELEASE").flatMap(ReleaseID.init) else { continue }
            found.append(WorkerTable.Worker(slot: variable("SLIPWAY_WORKER").flatMap(Int.init) ?? -1, pid: pid, procStartTime: start,
                                            release: release, generation: "?", state: .ready, startedAt: .now, restarts: 0))
        }
        return found
    }

    /// `pid`'s environment (`/proc/<pid>/environ`). Inside an `execve` it reads empty for a
    /// moment (the new image's arguments and environment are not placed yet), and a spawn chain
    /// makes three or four back to back: one in ten reads of a process that execs in a loop was
    /// empty here, and three tries 1 ms apart still missed the marker. So an empty read of a
    /// process that has a program (not a kernel thread) and no arguments yet (every image has at
    /// least an empty argv[0]) is tried again for up to 100 ms; an empty one with its arguments in
    /// place (`env -i`) is read once more (the exec may have placed both between the reads) and
    /// taken as it is.
    static func environment(of pid: pid_t) -> [UInt8]? {
        let deadline = ContinuousClock.now + .milliseconds(100)
        while true {
            guard let environ = FileOps.readFile("/proc/\(pid)/environ", limit: 1 << 20) else { return nil }
            guard environ.isEmpty, FileOps.readLink("/proc/\(pid)/exe") != nil else { return environ }
            if FileOps.readFile("/proc/\(pid)/cmdline", limit: 1)?.isEmpty == false {
                return FileOps.readFile("/proc/\(pid)/environ", limit: 1 << 20)
            }
            guard ContinuousClock.now < deadline else { return environ }
            usleep(500)
        }
    }

    /// The programs of a worker's spawn chain, as `/proc/<pid>/exe` names them (symlinks resolved).
    static let spawnChain: Set<String> = Set(["/usr/bin/nice", "/bin/sh", AppAccount.setpriv].compactMap(FileOps.resolvedPath))

    /// How long a chain still root is waited for: it takes milliseconds; 2 s covers a loaded host.
    static let chainPatience = Duration.seconds(2)

    /// Whether `pid` runs as an account other than root, once a spawn chain it may still be in
    /// has dropped to the app's account (until `deadline`; polled every 5 ms). `waited` is set
    /// when it had to wait.
    static func runsAsAccount(_ pid: pid_t, until deadline: ContinuousClock.Instant, waited: inout Bool) -> Bool {
        while true {
            guard let uids = ProcessTable.uids(of: pid), !uids.isEmpty else { return false }
            if !uids.contains(0) { return true }
            guard ContinuousClock.now < deadline, let program = FileOps.readLink("/proc/\(pid)/exe"), spawnChain.contains(program) else { return false }
            waited = true
            usleep(5_000)
        }
    }

    static func runsAsAccount(_ pid: pid_t, until deadline: ContinuousClock.Instant) -> Bool {
        var waited = false
        return runsAsAccount(pid, until: deadline, waited: &waited)
    }
}
