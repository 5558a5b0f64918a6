import Foundation

/// What /proc says about processes: whether a recorded pid is still the same process, and how
/// much memory a worker's whole process group holds.
enum ProcessTable {
    /// Field 22 of /proc/PID/stat: the start time in clock ticks since boot. A pid plus its
    /// start time names one process, even after the pid is reused.
    static func startTime(of pid: pid_t) -> UInt64? {
        FileOps.readFile("/proc/\(pid)/stat", limit: 4096).flatMap(startTime(inStat:))
    }

    /// `startTime` from the bytes of a /proc/PID/stat line.
    static func startTime(inStat bytes: [UInt8]) -> UInt64? {
        fields(ofStat: bytes).flatMap { $0.count > 19 ? UInt64($0[19]) : nil }
    }

    /// Whether `pid` names a live process (a zombie waiting to be reaped is not), and, with
    /// `startTime`, the same one as recorded.
    static func isRunning(_ pid: pid_t, startTime: UInt64? = nil) -> Bool {
        guard let fields = statFields(pid), fields.count > 19, fields[0] != "Z", fields[0] != "X" else { return false }
        return startTime.map { UInt64(fields[19]) == $0 } ?? true
    }

    /// Whether `pid` is on its way out: it has begun to exit (`PF_EXITING`, in the flags field
    /// of /proc/PID/stat) and is not a zombie yet. Such a process may have no memory left (no
    /// environment, no program to read) while it still holds its files for a moment.
    static func isExiting(_ pid: pid_t) -> Bool {
        guard let fields = statFields(pid), fields.count > 6, fields[0] != "Z", fields[0] != "X", let flags = UInt64(fields[6]) else { return false }
        return flags & 0x4 != 0
    }

    /// The parent of `pid` (field 4 of /proc/PID/stat), zombies included.
    static func parent(of pid: pid_t) -> pid_t? {
        statFields(pid).flatMap { $0.count > 1 ? pid_t($0[1]) : nil }
    }

    /// Whether `pid` leads its own session (field 6 of /proc/PID/stat is its own pid).
    static func isSessionLeader(_ pid: pid_t) -> Bool {
        statFields(pid).map { $0.count > 3 && pid_t($0[3]) == pid } ?? false
    }

    /// The real, effective, saved and filesystem uids of `pid` (the `Uid:` line of /proc/PID/status).
    static func uids(of pid: pid_t) -> [uid_t]? {
        guard let bytes = FileOps.readFile("/proc/\(pid)/status", limit: 16384) else { return nil }
        let line = String(decoding: bytes, as: UTF8.self).split(separator: "\n").first { $0.hasPrefix("Uid:") }
        return line.map { $0.dropFirst(4).split(whereSeparator: { $0 == "\t" || $0 == " " }).compactMap { uid_t($0) } }
    }

    /// RSS in bytes of every process whose process group is one of `groups`, keyed by group.
    static func residentBytes(ofGroups groups: Set<pid_t>) -> [pid_t: UInt64] {
        guard !groups.isEmpty, let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [:] }
        let page = UInt64(sysconf(Int32(_SC_PAGESIZE)))
        var totals: [pid_t: UInt64] = [:]
        for entry in entries {
            guard let pid = pid_t(entry), let fields = statFields(pid), fields.count > 21,
                  let group = pid_t(fields[2]), groups.contains(group), let pages = UInt64(fields[21]) else { continue }
            totals[group, default: 0] += pages * page
        }
        return totals
    }

    /// The fields after the command name (which may itself hold spaces and parentheses):
    /// index 0 is the state, 2 the process group, 3 the session, 6 the flags, 19 the start time,
    /// 21 the RSS in pages.
    private static func statFields(_ pid: pid_t) -> [Substring]? {
        FileOps.readFile("/proc/\(pid)/stat", limit: 4096).flatMap(fields(ofStat:))
    }

    private static func fields(ofStat bytes: [UInt8]) -> [Substring]? {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return nil }
        return text[text.index(after: close)...].split(separator: " ")
    }
}
