import Foundation

/// Finds processes left running by a build whose agent died (kill -9), by the
/// `SLIPWAY_STAGING` marker in their environment, and kills them before their staging
/// directory is removed.
enum StaleBuilds {
    @discardableResult
    static func kill(under stagingRoot: String) -> [pid_t] {
        let marker = Array("SLIPWAY_STAGING=\(stagingRoot)/".utf8)
        var killed: [pid_t] = []
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(name), pid != getpid(),
                  let environ = FileOps.readFile("/proc/\(pid)/environ") else { continue }
            let matches = environ.split(separator: 0).contains { $0.starts(with: marker) }
            if matches, Foundation.kill(pid, SIGKILL) == 0 { killed.append(pid) }
        }
        return killed
    }
}
