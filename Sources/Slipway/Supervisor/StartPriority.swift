import Foundation

/// A worker starts at a lower CPU priority until it is ready, then returns to normal: while a
/// rollout boots Node or Python processes, the workers serving traffic keep the cores.
///
/// Where the worker's containment is a cgroup with the cpu controller, its `cpu.weight` goes
/// from 100 to `startingWeight`; elsewhere (a hybrid host's cgroup2 has no cpu controller) the
/// worker is started under `nice -n 10`, which everything it starts inherits. On ready the
/// weight goes back to 100, and every thread of every process in the worker's tree still at
/// nice 10 goes back to 0 (Linux's nice is per thread, and Node starts its threads while it
/// boots). A thread the app set to another nice itself is left as it is.
///
/// Where the kernel groups processes by session (`sched_autogroup`, on in Debian's kernels),
/// CPU time is shared between sessions first and a thread's nice only counts against threads of
/// its own session; every worker is a session of its own (`setsid` at spawn), so its nice alone
/// would change nothing against the workers serving. Its session's nice
/// (`/proc/<pid>/autogroup`) goes to 10 too, and back to 0 on ready.
enum StartPriority {
    static let startingNice: Int32 = 10
    static let startingWeight = 10
    static let normalWeight = 100

    /// `argv` wrapped so that the worker begins at the lower priority.
    static func wrap(_ argv: [String], containment: Containment?) -> [String] {
        if let directory = containment?.directory, write("\(startingWeight)", to: directory + "/cpu.weight") {
            return argv
        }
        return ["/usr/bin/nice", "-n", "\(startingNice)"] + argv
    }

    /// The worker `pid` (a session leader) was spawned a moment ago: its session's share of the
    /// CPU goes down with its nice. Only ever lowered here, and raised back only from 10 by
    /// `restore`, so a pid that named another process by then could lose priority, never gain.
    static func lowerSession(pid: pid_t) {
        _ = write("\(startingNice)", to: "/proc/\(pid)/autogroup")
    }

    /// The nice of `pid`'s session (`/autogroup-17 nice 10`), nil without autogroups.
    static func sessionNice(of pid: pid_t) -> Int32? {
        guard let bytes = FileOps.readFile("/proc/\(pid)/autogroup"),
              let last = String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isWhitespace).last else { return nil }
        return Int32(last)
    }

    /// The worker `pid` is ready: its cgroup's weight, its session's nice and its tree's threads
    /// back to normal.
    static func restore(pid: pid_t) {
        if let directory = cgroupDirectory(of: pid) { _ = write("\(normalWeight)", to: directory + "/cpu.weight") }
        if sessionNice(of: pid) == startingNice { _ = write("0", to: "/proc/\(pid)/autogroup") }
        for process in tree(of: pid) {
            guard let threads = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(process)/task") else { continue }
            for thread in threads.compactMap({ id_t($0) }) {
                errno = 0
                let nice = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), thread)
                if errno == 0 && nice == startingNice {
                    _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), thread, 0)
                }
            }
        }
    }

    /// `pid` and its descendants, from the parent pids in /proc.
    static func tree(of pid: pid_t) -> [pid_t] {
        var children: [pid_t: [pid_t]] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let child = pid_t(name), let parent = parentPID(of: child) else { continue }
            children[parent, default: []].append(child)
        }
        var result = [pid]
        var index = 0
        while index < result.count {
            result += children[result[index]] ?? []
            index += 1
        }
        return result
    }

    private static func parentPID(of pid: pid_t) -> pid_t? {
        guard let bytes = FileOps.readFile("/proc/\(pid)/stat") else { return nil }
        // `pid (comm) state ppid ...`: comm may hold spaces and parentheses, so after the last ')'.
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let fields = bytes[(close + 1)...].split(separator: UInt8(ascii: " "))
        guard fields.count > 1 else { return nil }
        return pid_t(String(decoding: fields[1], as: UTF8.self))
    }

    /// The worker's own cgroup directory when its containment is one with the cpu controller.
    private static func cgroupDirectory(of pid: pid_t) -> String? {
        guard case .cgroup = Containment.mechanism, let mount = Containment.cgroup2Mount(),
              let bytes = FileOps.readFile("/proc/\(pid)/cgroup") else { return nil }
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where line.hasPrefix("0::") {
            let directory = mount + line.dropFirst(3)
            return FileManager.default.fileExists(atPath: directory + "/cpu.weight") ? directory : nil
        }
        return nil
    }

    private static func write(_ text: String, to path: String) -> Bool {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return (try? FileOps.writeAll(fd, Array(text.utf8), path: path)) != nil
    }
}
