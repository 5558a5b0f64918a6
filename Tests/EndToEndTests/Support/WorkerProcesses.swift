import Foundation

/// What /proc says about an app's workers, independent of what the agent recorded: the tests'
/// own count of the processes that lead a session in one of the app's release directories.
enum WorkerProcesses {
    /// Session leaders whose working directory is inside `releases` (a pruned release's shows
    /// as "… (deleted)"), with that directory.
    static func leaders(under releases: String) -> [Int32: String] {
        var found: [Int32: String] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), WorkerApp.isRunning(pid),
                  let cwd = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(entry)/cwd"),
                  cwd.hasPrefix(releases + "/"),
                  let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 3, Int32(fields[3]) == pid { found[pid] = cwd }
        }
        return found
    }

    /// When the worker log says the first worker of `release` exited (seconds since 1970).
    static func exitTime(ofRelease release: String, log: String) -> Double? {
        let lines = log.split(separator: "\n")
        guard let started = lines.first(where: { $0.contains("slipway: started") && $0.contains("(release \(release),") }),
              let open = started.firstIndex(of: "["), let shut = started.firstIndex(of: "]") else { return nil }
        let label = started[open...shut]
        guard let exited = lines.first(where: { $0.contains("\(label) slipway: exited:") }),
              let stamp = exited.split(separator: " ").first else { return nil }
        let format = ISO8601DateFormatter()
        format.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return format.date(from: String(stamp))?.timeIntervalSince1970
    }

    /// Connects to 127.0.0.1:`port`: whether it was refused, and how long the answer took
    /// (bounded by `timeout`; a connect still pending then is not refused).
    static func connect(port: Int, timeout: Double = 3) -> (refused: Bool, seconds: Double) {
        let started = Date()
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if rc != 0 && errno == ECONNREFUSED { return (true, Date().timeIntervalSince(started)) }
        if rc != 0 && errno == EINPROGRESS {
            var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            if poll(&entry, 1, Int32(timeout * 1000)) == 1 {
                var error: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
                return (error == ECONNREFUSED, Date().timeIntervalSince(started))
            }
        }
        return (false, Date().timeIntervalSince(started))
    }
}
