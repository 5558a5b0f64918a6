import Foundation

/// Finds processes left running by a build whose agent died (kill -9), by the
/// `SLIPWAY_STAGING` marker in their environment, and kills them before their staging
/// directory is removed.
///
/// Reading every process's environment is the costly part, so a pass takes one census at its
/// start and each app looks itself up in it: one scan of /proc per pass, not one per app
/// (5,000 manifests made that a scan of /proc 5,000 times a pass).
enum StaleBuilds {
    /// The processes that carry a `SLIPWAY_STAGING` marker, with its value.
    struct Census: Sendable {
        var marked: [(pid: pid_t, staging: String)] = []

        /// Scans /proc once.
        static func take() -> Census {
            let key = Array("SLIPWAY_STAGING=".utf8)
            var census = Census()
            for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
                guard let pid = pid_t(name), pid != getpid(),
                      let environ = FileOps.readFile("/proc/\(pid)/environ") else { continue }
                for variable in environ.split(separator: 0) where variable.starts(with: key) {
                    census.marked.append((pid, String(decoding: variable.dropFirst(key.count), as: UTF8.self)))
                }
            }
            return census
        }
    }

    /// Kills the processes of `census` (a fresh one when nil) marked with a path under `stagingRoot`.
    @discardableResult
    static func kill(under stagingRoot: String, census: Census? = nil) -> [pid_t] {
        let prefix = stagingRoot + "/"
        var killed: [pid_t] = []
        for process in (census ?? .take()).marked where process.staging.hasPrefix(prefix) {
            if Foundation.kill(process.pid, SIGKILL) == 0 { killed.append(process.pid) }
        }
        return killed
    }
}
