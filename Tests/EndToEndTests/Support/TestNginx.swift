import Foundation

/// A real nginx (Debian's) with its own prefix in a test's sandbox, serving on a loopback port.
/// The agent writes into `sitesDir` and checks and reloads through `testCommand`/`reloadCommand`.
final class TestNginx {
    let prefix: String
    let port: Int
    var sitesDir: String { prefix + "/sites" }
    var conf: String { prefix + "/nginx.conf" }
    static let binary = "/usr/sbin/nginx"

    init(root: String) throws {
        prefix = root + "/nginx"
        port = try WorkerApp.freePort()
        for dir in ["", "/sites", "/tmp", "/logs"] {
            try FileManager.default.createDirectory(atPath: prefix + dir, withIntermediateDirectories: true)
        }
        let user = geteuid() == 0 ? "user nobody nogroup;\n" : ""
        try """
        \(user)worker_processes 1;
        pid \(prefix)/nginx.pid;
        error_log \(prefix)/logs/error.log;
        events { worker_connections 512; }
        http {
            include /etc/nginx/mime.types;
            default_type application/octet-stream;
            access_log off;
            client_body_temp_path \(prefix)/tmp/body;
            proxy_temp_path \(prefix)/tmp/proxy;
            fastcgi_temp_path \(prefix)/tmp/fastcgi;
            uwsgi_temp_path \(prefix)/tmp/uwsgi;
            scgi_temp_path \(prefix)/tmp/scgi;
            include \(prefix)/sites/*.conf;
        }
        """.write(toFile: conf, atomically: true, encoding: .utf8)
    }

    var testCommand: String { "\(Self.binary) -p \(prefix) -c \(conf) -t -q" }
    var reloadCommand: String { "\(Self.binary) -p \(prefix) -c \(conf) -s reload" }

    /// The agent config's `nginx:` section for this instance.
    var agentConfig: String {
        """
        nginx:
          sites_dir: \(sitesDir)
          test: \(Fixture.yamlQuoted(testCommand))
          reload: \(Fixture.yamlQuoted(reloadCommand))
        \(pidFileLine)
        """
    }

    /// `agentConfig`'s `pid_file:` line: a test that takes it out has the agent judge reloads by
    /// connecting alone.
    var pidFileLine: String { "  pid_file: \(prefix)/nginx.pid" }

    private var master: Process?

    /// In the foreground (`daemon off`): the master is this test's child, stopped in `stop()`.
    func start() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["-p", prefix, "-c", conf, "-g", "daemon off;"]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        master = process
        let deadline = Date().addingTimeInterval(20)
        while (masterPID == nil || workerPIDs().isEmpty) && process.isRunning && Date() < deadline { usleep(20_000) }
        guard process.isRunning, masterPID != nil else {
            throw FixtureError("nginx did not start: \((try? String(contentsOfFile: prefix + "/logs/error.log", encoding: .utf8)) ?? "")")
        }
    }

    var masterPID: Int32? {
        (try? String(contentsOfFile: prefix + "/nginx.pid", encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// The master's worker processes: a reload replaces them, so unchanged pids mean no reload.
    func workerPIDs() -> Set<Int32> {
        guard let master = masterPID else { return [] }
        var result: Set<Int32> = []
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
            if fields.count > 1, Int32(fields[1]) == master, WorkerApp.isRunning(pid) { result.insert(pid) }
        }
        return result
    }

    /// The worker processes once a reload has finished (old workers gone, one new one up).
    func settledWorkers() -> Set<Int32> {
        let deadline = Date().addingTimeInterval(10)
        while workerPIDs().count != 1 && Date() < deadline { usleep(20_000) }
        return workerPIDs()
    }

    /// SIGTERM (nginx's fast shutdown stops its workers too), SIGKILL after 5 s. Reaped with
    /// waitpid here: Foundation's Process does not always notice a child's exit in the test runner.
    func stop() {
        guard let pid = master?.processIdentifier ?? masterPID else { return }
        let workers = workerPIDs()
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(5)
        var status: Int32 = 0
        while waitpid(pid, &status, WNOHANG) == 0 && Date() < deadline { usleep(20_000) }
        if WorkerApp.isRunning(pid) { kill(pid, SIGKILL); _ = waitpid(pid, &status, 0) }
        for worker in workers where WorkerApp.isRunning(worker) { kill(worker, SIGKILL) }
        master = nil
        unlink(prefix + "/nginx.pid")
    }

    deinit { stop() }

    /// GET through nginx: status, headers (lowercased names), body.
    func get(_ path: String, headers: [String] = []) throws -> (status: Int, headers: [String: String], body: String) {
        let result = try Fixture.run("/usr/bin/curl", ["-sS", "--max-time", "10", "-D", "-", "-o", "-"]
            + headers.flatMap { ["-H", $0] } + ["http://127.0.0.1:\(port)\(path)"], timeout: 20)
        let text = result.stdout.replacingOccurrences(of: "\r", with: "")
        guard let split = text.range(of: "\n\n") else { return (0, [:], text) }
        let head = text[..<split.lowerBound].split(separator: "\n")
        var fields: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let status = Int(head.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        return (status, fields, String(text[split.upperBound...]))
    }
}
