import Foundation
import LoopbackPorts
import Logging
@testable import Slipway
import SlipwayCore

/// A temporary host for driving `Reconciler.pass()` in-process: a source repo and a manifests
/// repo (real git repos, made with the git CLI), an agent config, apps_root and state_dir.
final class PassSandbox {
    let root: String
    var source: String { root + "/src.git-work" }
    var manifests: String { root + "/manifests" }
    var appsRoot: String { root + "/apps" }
    var stateDir: String { root + "/state" }
    let config: AgentConfig

    init() throws {
        var template = Array((FileManager.default.temporaryDirectory.path + "/slipway-pass-XXXXXX").utf8CString)
        guard mkdtemp(&template) != nil else { throw SandboxError("mkdtemp failed") }
        root = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        chmod(root, 0o755)
        for repo in [root + "/src.git-work", root + "/manifests"] {
            try Self.git(["init", "-q", "-b", "main", repo])
        }
        let yaml = """
        host: web-1
        manifests: {repo: \(root)/manifests, branch: main, path: manifests}
        apps_root: \(root)/apps
        state_dir: \(root)/state
        apps_user: nobody
        git: {local_roots: [\(root)]}
        """
        guard case .success(let config) = AgentConfig.decode(yaml, file: "agent.yaml", hostname: "web-1") else {
            throw SandboxError("the sandbox's agent.yaml does not decode")
        }
        self.config = config
    }

    deinit {
        try? FileManager.default.removeItem(atPath: root)
    }

    /// Commits `files` to the source repo; returns the commit id.
    @discardableResult
    func commitSource(_ files: [String: String]) throws -> String {
        try commit(files, in: source)
    }

    /// Commits `manifests/<app>.yaml` for a static app whose build is `build`.
    @discardableResult
    func commitManifest(app: String = "demo", ref: String = "main", build: String = "mkdir -p dist && cp index.html dist/") throws -> String {
        try commit(["manifests/\(app).yaml": """
        app: \(app)
        source: {repo: \(source), ref: \(ref)}
        frontend:
          build: "\(build)"
          output: dist
        """], in: manifests)
    }

    /// Commits `files` to the manifests repo as they are.
    @discardableResult
    func commitManifests(_ files: [String: String]) throws -> String {
        try commit(files, in: manifests)
    }

    /// Commits a source with `worker.sh` (`command`) and a manifest running one worker of it on
    /// `port`, ready by READY=1 within `readyTimeout`.
    func commitWorkers(command: String, port: Int, readyTimeout: String = "3s") throws {
        try commitSource(["worker.sh": "#!/bin/sh\n" + command + "\n"])
        try commitManifests(["manifests/demo.yaml": """
        app: demo
        source: {repo: \(source), ref: main}
        backend:
          command: /bin/sh worker.sh
          instances: 1
          listen: 127.0.0.1:\(port)
          ready: {notify: true, timeout: \(readyTimeout)}
          stop: {signal: SIGTERM, timeout: 2s}
        """])
    }

    /// A TCP port on 127.0.0.1 nothing listens on right now, outside the ephemeral range (see LoopbackPort).
    static func freePort() throws -> Int { try LoopbackPort.free() }

    func reconciler(runtime: AgentRuntime? = nil) -> Reconciler {
        var logger = Logger(label: "slipway.test")
        logger.logLevel = .critical
        return Reconciler(config: config, logger: logger, runtime: runtime)
    }

    func status(_ app: String = "demo") -> AppStatus? {
        StateFile(stateDir: stateDir).load().apps[app]
    }

    func current(_ app: String = "demo") -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: appsRoot + "/" + app + "/current")
    }

    private func commit(_ files: [String: String], in repo: String) throws -> String {
        for (path, text) in files {
            let full = repo + "/" + path
            try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: full, atomically: true, encoding: .utf8)
        }
        try Self.git(["-C", repo, "add", "-A"])
        try Self.git(["-C", repo, "-c", "user.name=t", "-c", "user.email=t@t.invalid", "-c", "commit.gpgsign=false", "commit", "-q", "-m", "change"])
        return try Self.git(["-C", repo, "rev-parse", "HEAD"]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @discardableResult
    static func git(_ arguments: [String]) throws -> String {
        try run("/usr/bin/git", arguments)
    }

    /// Runs `executable` to its end; what it printed, or an error when it failed.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw SandboxError("\((executable as NSString).lastPathComponent) \(arguments.joined(separator: " ")) failed")
        }
        return String(decoding: output, as: UTF8.self)
    }
}

/// Collects the events a reconciler publishes.
final class EventLog: @unchecked Sendable {
    // Guarded by `lock`: events come from the pass's task; the test reads them after it.
    private var events: [AgentEvent] = []
    private let lock = NSLock()

    func append(_ event: AgentEvent) { lock.withLock { events.append(event) } }

    /// "stage state" lines for stage events, in order.
    var stageLines: [String] {
        lock.withLock { events.filter { $0.event == .stage }.map { "\($0.stage?.rawValue ?? "?") \($0.state ?? "?")" } }
    }

    var all: [AgentEvent] { lock.withLock { events } }
}

struct SandboxError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
