import Foundation
import SlipwayCore

/// Slipway's preload for Node workers (`share/slipway/node-preload.js`, installed as
/// `/usr/share/slipway/node-preload.js`): a `listen()` on the app's `PORT` takes fd 3, so an
/// app written as `app.listen(process.env.PORT || 3000)` runs unchanged as N workers.
enum NodePreload {
    static let relativePath = "share/slipway/node-preload.js"
    /// Where the .deb installs it.
    static let installedPath = "/usr/" + relativePath

    /// Where the module is: `SLIPWAY_NODE_PRELOAD` when set, else the first
    /// `share/slipway/node-preload.js` in a directory above the binary (`/usr/bin/slipway` finds
    /// `/usr/share/slipway/…`; a build in a checkout finds the checkout's own copy), else nil.
    static let path: String? = {
        if let explicit = ProcessInfo.processInfo.environment["SLIPWAY_NODE_PRELOAD"], !explicit.isEmpty {
            return explicit
        }
        guard let executable = realpath("/proc/self/exe", nil) else { return nil }
        defer { free(executable) }
        var directory = String(cString: executable)
        for _ in 0..<5 {
            guard let slash = directory.lastIndex(of: "/"), slash != directory.startIndex else { break }
            directory = String(directory[..<slash])
            let candidate = directory + "/" + relativePath
            if FileOps.lstatMode(candidate) == S_IFREG { return candidate }
        }
        return nil
    }()

    /// Whether `workers` get the preload: a TCP listener, a `node`/`nodejs` program, and
    /// `backend.preload` not turned off.
    static func applies(to workers: Workers) -> Bool {
        guard workers.preload, case .tcp = workers.listen,
              let program = WorkerCommand.programName(of: workers.command) else { return false }
        return program == "node" || program == "nodejs"
    }

    /// `environment` with `--require <module>` added to `NODE_OPTIONS` (after the app's own
    /// options) when the preload applies and the module is installed.
    static func environment(_ environment: [String: String], for workers: Workers) -> [String: String] {
        guard applies(to: workers), let path else { return environment }
        var result = environment
        let require = "--require " + (path.contains(" ") ? "\"\(path)\"" : path)
        result["NODE_OPTIONS"] = [environment["NODE_OPTIONS"], require].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: " ")
        return result
    }
}
