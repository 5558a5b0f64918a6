import Foundation

/// nginx's master process and the processes it runs, read from its pid file and /proc. A reload
/// nginx took starts a new generation of workers under the master; one it could not take (a
/// `listen` it cannot bind, whoever holds the port) leaves only the old ones. That tells a
/// taken reload from a refused one on any address, where a connection to the address cannot:
/// another program listening there answers either way.
struct NginxMaster: Equatable {
    let pid: pid_t
    let children: Set<pid_t>

    /// The master named by `pidFile`, when that is a live nginx master with children; nil
    /// otherwise (nginx is not running, `master_process off`, another pid file): then a reload
    /// cannot be judged this way.
    static func read(pidFile: String) -> NginxMaster? {
        guard let bytes = FileOps.readFile(pidFile, limit: 64), let pid = parsePID(bytes),
              isMasterTitle(FileOps.readFile("/proc/\(pid)/cmdline", limit: 4096) ?? []) else { return nil }
        var children: Set<pid_t> = []
        for task in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? [] {
            children.formUnion(parseChildren(FileOps.readFile("/proc/\(pid)/task/\(task)/children") ?? []))
        }
        return children.isEmpty ? nil : NginxMaster(pid: pid, children: children)
    }

    /// Whether this (read after a reload) shows nginx took it: the same master with a process it
    /// did not have before, or a master of its own since (restarted, it read the files anew).
    func startedNewGeneration(since before: NginxMaster) -> Bool {
        pid != before.pid || !children.subtracting(before.children).isEmpty
    }

    /// Waits until the master named by `pidFile` shows a generation newer than `before`, reading
    /// it every `interval` up to `deadline`; false when none came.
    static func awaitNewGeneration(pidFile: String, since before: NginxMaster, deadline: Duration, interval: Duration) async -> Bool {
        let end = ContinuousClock.now + deadline
        while true {
            if let now = read(pidFile: pidFile), now.startedNewGeneration(since: before) { return true }
            guard ContinuousClock.now + interval < end, !Task.isCancelled else { return false }
            try? await Task.sleep(for: interval)
        }
    }

    /// The pid file's one decimal number (nginx writes `1234\n`); nil for anything else.
    static func parsePID(_ bytes: [UInt8]) -> pid_t? {
        let text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty, text.allSatisfy(\.isASCII), text.allSatisfy(\.isNumber), let pid = pid_t(text), pid > 1 else { return nil }
        return pid
    }

    /// nginx's master sets its title to `nginx: master process <command line>`: a pid the file
    /// still names after nginx stopped, now another program's, does not pass.
    static func isMasterTitle(_ cmdline: [UInt8]) -> Bool {
        cmdline.starts(with: Array("nginx: master process".utf8))
    }

    /// `/proc/<pid>/task/<tid>/children`: space-separated pids.
    static func parseChildren(_ bytes: [UInt8]) -> Set<pid_t> {
        Set(String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isWhitespace).compactMap { pid_t($0) })
    }
}
