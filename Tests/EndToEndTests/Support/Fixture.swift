import Foundation
import Testing

/// A sandbox for one end-to-end test: a temp dir with a source repo, a manifests repo (both
/// real git repos made with the git CLI), an agent config, and a way to run the built binary.
final class Fixture {
    let root: String
    let sourceRepo: String
    let manifestsRepo: String
    let configPath: String
    var appsRoot: String { root + "/apps" }
    var stateDir: String { root + "/state" }
    /// Writable by the builds and workers (which run as `appsUser` under root): for markers.
    var scratch: String { root + "/scratch" }

    init(name: String = "e2e") throws {
        let template = FileManager.default.temporaryDirectory.appendingPathComponent("slipway-\(name)-XXXXXX").path
        var buffer = Array(template.utf8CString)
        guard mkdtemp(&buffer) != nil else { throw FixtureError("mkdtemp failed") }
        root = String(decoding: buffer.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // Builds and workers run as an unprivileged account when the tests run as root: it must
        // be able to reach the release directories.
        chmod(root, 0o755)
        try FileManager.default.createDirectory(atPath: root + "/scratch", withIntermediateDirectories: true)
        chmod(root + "/scratch", 0o1777)
        sourceRepo = root + "/src"
        manifestsRepo = root + "/manifests"
        configPath = root + "/agent.yaml"
        try git(["init", "-q", "-b", "main", sourceRepo])
        try git(["init", "-q", "-b", "main", manifestsRepo])
        try write("""
        host: web-1
        manifests:
          repo: \(manifestsRepo)
          branch: main
          path: manifests
        apps_root: \(appsRoot)
        state_dir: \(stateDir)
        poll_interval: 1s
        listen: 127.0.0.1:0
        apps_user: \(Fixture.appsUser)
        \(localRoots)
        """, to: configPath)
    }

    /// agent.yaml's `git:` line that lets local source repos in this sandbox be read (the
    /// default `local_roots` is /srv/git).
    var localRoots: String { "git: {local_roots: [\(root)]}" }

    /// The account builds and workers run as when the tests run as root.
    static let appsUser = "nobody"

    deinit {
        // Kill any agent a test left running on this sandbox, then remove it.
        _ = try? Fixture.run("/usr/bin/pkill", ["-KILL", "-f", root + "/"], timeout: 5)
        Fixture.killProcesses(under: root)
        try? FileManager.default.removeItem(atPath: root)
    }

    /// Kills every process whose working directory is inside `directory` (workers an agent
    /// started run in their release directory, in their own sessions).
    static func killProcesses(under directory: String) {
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), pid != getpid(),
                  let cwd = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(entry)/cwd"),
                  cwd.hasPrefix(directory + "/") else { continue }
            kill(pid, SIGKILL)
        }
    }

    // MARK: Files and git

    func write(_ text: String, to path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    func read(_ path: String) -> String? {
        try? String(contentsOfFile: path, encoding: .utf8)
    }

    @discardableResult
    func git(_ arguments: [String], in directory: String? = nil) throws -> String {
        var args = ["-c", "user.name=Slipway Tests", "-c", "user.email=tests@slipway.invalid", "-c", "commit.gpgsign=false"]
        if let directory { args += ["-C", directory] }
        // Generous: a 5,000-file `git add` on a loaded 2-core machine took over 30 s once.
        let result = try Fixture.run("/usr/bin/git", args + arguments, timeout: 120)
        guard result.status == 0 else { throw FixtureError("git \(arguments.joined(separator: " ")) failed: \(result.stderr)") }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Writes files into the source repo and commits them; returns the new commit id.
    @discardableResult
    func commitSource(_ files: [String: String], message: String = "change", executable: Set<String> = []) throws -> String {
        for (path, text) in files {
            try write(text, to: sourceRepo + "/" + path)
            if executable.contains(path) { chmod(sourceRepo + "/" + path, 0o755) }
        }
        try git(["add", "-A"], in: sourceRepo)
        try git(["commit", "-q", "--allow-empty", "-m", message], in: sourceRepo)
        return try git(["rev-parse", "HEAD"], in: sourceRepo)
    }

    /// Writes a manifest into the manifests repo and commits it.
    @discardableResult
    func commitManifest(_ name: String, _ text: String) throws -> String {
        try write(text, to: manifestsRepo + "/manifests/" + name)
        try git(["add", "-A"], in: manifestsRepo)
        try git(["commit", "-q", "--allow-empty", "-m", "manifest \(name)"], in: manifestsRepo)
        return try git(["rev-parse", "HEAD"], in: manifestsRepo)
    }

    func removeManifest(_ name: String) throws {
        try git(["rm", "-q", "manifests/" + name], in: manifestsRepo)
        try git(["commit", "-q", "-m", "remove \(name)"], in: manifestsRepo)
    }

    /// A typical manifest for app `app` at `ref`, with a frontend and a backend build.
    func manifest(app: String = "demo", ref: String, keep: Int = 5, extra: String = "",
                  frontendBuild: String = "mkdir -p dist && cp index.html dist/index.html",
                  backendBuild: String = "echo backend built > BUILT") -> String {
        """
        app: \(app)
        source:
          repo: \(sourceRepo)
          ref: \(ref)
        releases:
          keep: \(keep)
        frontend:
          build: \(Fixture.yamlQuoted(frontendBuild))
          output: dist
        backend:
          build: \(Fixture.yamlQuoted(backendBuild))
        \(extra)
        """
    }

    /// A YAML double-quoted scalar holding `text` exactly; control characters as `\xNN` escapes
    /// (YAML allows none raw).
    static func yamlQuoted(_ text: String) -> String {
        var quoted = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": quoted += "\\\\"
            case "\"": quoted += "\\\""
            case _ where scalar.value < 0x20: quoted += String(format: "\\x%02x", scalar.value)
            default: quoted.unicodeScalars.append(scalar)
            }
        }
        return quoted + "\""
    }

    // MARK: The binary

    static let binary: String = {
        if let explicit = ProcessInfo.processInfo.environment["SLIPWAY_BIN"] { return explicit }
        let testBinaryDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        var candidates = [testBinaryDir.appendingPathComponent("slipway").path]
        // .../Tests/EndToEndTests/Support/Fixture.swift → package root
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(packageRoot.appendingPathComponent(".build/debug/slipway").path)
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }()

    /// Runs `slipway ARGS --config <this fixture's config>` to completion (bounded).
    @discardableResult
    func slipway(_ arguments: [String], config: Bool = true, timeout: Double = 120) throws -> RunResult {
        try Fixture.run(Fixture.binary, arguments + (config ? ["--config", configPath] : []), timeout: timeout)
    }

    /// Starts `slipway ARGS --config <config>` in the background (output discarded); the caller stops it.
    func launch(_ arguments: [String], environment: [String: String]? = nil) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Fixture.binary)
        process.arguments = arguments + ["--config", configPath]
        if let environment { process.environment = environment }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Polls until `condition` holds or `seconds` pass; returns whether it held.
    @discardableResult
    func waitUntil(seconds: Double = 30, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        // The answer is the look that saw it hold: a state that lasts a moment (a worker in a
        // 100 ms backoff) must not be looked at a second time and missed.
        while Date() < deadline {
            if condition() { return true }
            usleep(20_000)
        }
        return condition()
    }

    func pass(timeout: Double = 120) throws -> RunResult {
        try slipway(["agent", "--once"], timeout: timeout)
    }

    struct RunResult {
        var status: Int32
        var stdout: String
        var stderr: String
        var output: String { stdout + stderr }
    }

    /// Runs a program with a hard time limit; the process is killed if it overruns.
    static func run(_ executable: String, _ arguments: [String], timeout: Double, environment: [String: String]? = nil) throws -> RunResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Drain both pipes concurrently so a chatty child never blocks on a full pipe.
        nonisolated(unsafe) var outData = Data(), errData = Data()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { outData = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter()
        DispatchQueue.global().async { errData = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            group.wait()
            throw FixtureError("\(executable) \(arguments.joined(separator: " ")) timed out after \(timeout)s; stderr: \(String(decoding: errData, as: UTF8.self))")
        }
        process.waitUntilExit()
        group.wait()
        return RunResult(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
    }

    // MARK: Looking at the result

    func releases(_ app: String = "demo") -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "\(appsRoot)/\(app)/releases")) ?? []).sorted()
    }

    func current(_ app: String = "demo") -> String? {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "\(appsRoot)/\(app)/current"))
            .map { ($0 as NSString).lastPathComponent }
    }

    func currentFile(_ relative: String, app: String = "demo") -> String? {
        read("\(appsRoot)/\(app)/current/\(relative)")
    }

    func statusJSON() throws -> [String: Any] {
        let result = try slipway(["status", "--json"])
        guard result.status == 0, let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] else {
            throw FixtureError("status --json failed: \(result.output)")
        }
        return object
    }

    func appStatus(_ app: String = "demo") throws -> [String: Any] {
        let apps = try statusJSON()["apps"] as? [[String: Any]] ?? []
        guard let status = apps.first(where: { $0["app"] as? String == app }) else { throw FixtureError("no status for \(app)") }
        return status
    }

    func stagingEntries(_ app: String = "demo") -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: "\(appsRoot)/\(app)/.slipway/staging")) ?? []
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension Fixture {
    /// `GET /healthz` on the agent's HTTP API answers `ok` within 1 s (a plain socket, no child
    /// process, so the time to the API coming back is measured closely).
    func healthzAnswers() -> Bool {
        let address = (read(stateDir + "/http.addr") ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        guard let port = address.split(separator: ":").last.flatMap({ UInt16($0) }) else { return false }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var limit = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var target = sockaddr_in()
        target.sin_family = sa_family_t(AF_INET)
        target.sin_addr.s_addr = inet_addr("127.0.0.1")
        target.sin_port = port.bigEndian
        let connected = withUnsafePointer(to: &target) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else { return false }
        let request = Array("GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8)
        guard send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else { return false }
        var answer = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            answer += buffer[..<count]
        }
        let text = String(decoding: answer, as: UTF8.self)
        return text.hasPrefix("HTTP/1.1 200") && text.hasSuffix("ok\n")
    }
}
