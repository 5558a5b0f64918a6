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
    /// cannot be judged this way. The pid file must be a regular file of root's (or the agent's)
    /// that nobody else can write: whoever could write it could steer the verdict.
    static func read(pidFile: String) -> NginxMaster? {
        guard let bytes = readPIDFile(pidFile), let pid = parsePID(bytes),
              isMasterTitle(FileOps.readFile("/proc/\(pid)/cmdline", limit: 4096) ?? []) else { return nil }
        var children: Set<pid_t> = []
        for task in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? [] {
            children.formUnion(parseChildren(FileOps.readFile("/proc/\(pid)/task/\(task)/children") ?? []))
        }
        return children.isEmpty ? nil : NginxMaster(pid: pid, children: children)
    }

    private static func readPIDFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_uid == 0 || info.st_uid == geteuid(),
              info.st_mode & 0o022 == 0, info.st_size < 64 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = buffer.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress, $0.count) }
        return count > 0 ? Array(buffer[..<count]) : nil
    }

    /// Whether this (read after a reload) shows nginx took it: the same master with a process it
    /// did not have before and that started at `tick` or later (clock ticks since boot: a child
    /// the earlier read missed is not new), or a master of its own since (restarted, or a new
    /// binary: either read the files anew, and writes its pid file only once it took them).
    func startedNewGeneration(since before: NginxMaster, after tick: UInt64, startTick: (pid_t) -> UInt64?) -> Bool {
        pid != before.pid || children.subtracting(before.children).contains { (startTick($0) ?? 0) >= tick }
    }

    /// What a wait for a reload ended with.
    enum Verdict: Equatable {
        /// New workers started.
        case taken
        /// The master finished the reload (it waits for signals again, none pending) with no
        /// new worker: it kept its previous configuration.
        case notTaken
        /// Still reloading at the wait's end (a configuration that takes minutes to load).
        case stillReloading
    }

    /// Waits for the master `before` to finish the reload just signalled, reading it every
    /// `interval`. A reload can take longer than any fixed deadline (a large `geo` map loads for
    /// seconds), so the master's own state says when it is over: it blocks every signal while it
    /// works and waits in `sigsuspend` with none blocked when it is done. Where that cannot be
    /// read, `deadline` decides; `patience` bounds the whole wait.
    static func awaitReload(pidFile: String, since before: NginxMaster, signalledAfter tick: UInt64,
                            deadline: Duration, patience: Duration, interval: Duration) async -> Verdict {
        let started = ContinuousClock.now
        var idleReads = 0
        while true {
            // The state first: a master seen idle with no new child then had finished, new
            // children come before the master waits again.
            let idle = FileOps.readFile("/proc/\(before.pid)/status", limit: 8192).flatMap(isWaitingIdle)
            if let now = read(pidFile: pidFile), now.startedNewGeneration(since: before, after: tick, startTick: ProcessTable.startTime(of:)) { return .taken }
            idleReads = idle == true ? idleReads + 1 : 0
            let waited = ContinuousClock.now - started
            if idleReads >= 2 || (idle == nil && waited >= deadline) { return .notTaken }
            if waited >= patience || Task.isCancelled { return .stillReloading }
            try? await Task.sleep(for: interval)
        }
    }

    /// Clock ticks since boot now (`/proc/<pid>/stat`'s start time counts the same ticks).
    static func bootTick() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_BOOTTIME, &now)
        let hz = UInt64(sysconf(Int32(_SC_CLK_TCK)))
        return UInt64(now.tv_sec) * hz + UInt64(now.tv_nsec) * hz / 1_000_000_000
    }

    /// From `/proc/<pid>/status`: whether the master waits with no signal blocked (`SigBlk` 0)
    /// and no SIGHUP pending (`ShdPnd` bit 0); nil when the lines are not there.
    static func isWaitingIdle(_ status: [UInt8]) -> Bool? {
        var blocked: UInt64?, pending: UInt64?
        for line in String(decoding: status, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { continue }
            if parts[0] == "SigBlk" { blocked = UInt64(parts[1], radix: 16) }
            if parts[0] == "ShdPnd" { pending = UInt64(parts[1], radix: 16) }
        }
        guard let blocked, let pending else { return nil }
        return blocked == 0 && pending & 1 == 0
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
