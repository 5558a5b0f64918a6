import Foundation

/// A real PostgreSQL (Debian's) for one test: initdb into the sandbox, then the server in the
/// foreground on a unix socket only (`listen_addresses=''`), trust authentication. Under root
/// it runs as the `postgres` account (the server refuses root); stopped with a fast shutdown.
final class TestPostgres {
    let dataDir: String
    /// The socket directory, reachable by the app's account.
    let socketDir: String
    private var server: Process?
    /// Where it also listens over TCP: a test network namespace, its address there, and the
    /// network (CIDR) whose clients it trusts; nil: the unix socket only.
    let tcp: (namespace: String, address: String, network: String)?

    static let binDir: String = {
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []).compactMap(Int.init).sorted()
        return "/usr/lib/postgresql/\(versions.last ?? 15)/bin"
    }()

    init(root: String, tcp: (namespace: String, address: String, network: String)? = nil) throws {
        self.tcp = tcp
        dataDir = root + "/pg/data"
        socketDir = root + "/pg/socket"
        for dir in [root + "/pg", dataDir, socketDir] {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        chmod(socketDir, 0o755)
        chmod(dataDir, 0o700)
        if geteuid() == 0 {
            let account = getpwnam("postgres")
            guard let account else { throw FixtureError("no 'postgres' account: install Debian's postgresql package") }
            chown(dataDir, account.pointee.pw_uid, account.pointee.pw_gid)
            chown(socketDir, account.pointee.pw_uid, account.pointee.pw_gid)
        }
        let argv = Self.wrap(Self.binDir + "/initdb") + ["-D", dataDir, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale", "C"]
        let initdb = try Fixture.run(argv[0], Array(argv.dropFirst()), timeout: 120)
        guard initdb.status == 0 else { throw FixtureError("initdb failed: \(initdb.output)") }
        if let tcp {
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: dataDir + "/pg_hba.conf"))
            handle.seekToEndOfFile()
            handle.write(Data("host all all \(tcp.network) trust\n".utf8))
            try handle.close()
        }
    }

    /// `argv` as the postgres account when the tests run as root.
    static func wrap(_ program: String) -> [String] {
        geteuid() == 0 ? ["/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--", program] : [program]
    }

    func start() throws {
        var argv = Self.wrap(Self.binDir + "/postgres") + ["-D", dataDir, "-k", socketDir, "-c", "listen_addresses=\(tcp?.address ?? "")",
                                                          "-c", "fsync=off", "-c", "max_connections=100"]
        // `ip netns exec` execs the server itself: the pid stays the server's.
        if let tcp { argv = ["/usr/sbin/ip", "netns", "exec", tcp.namespace] + argv }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        server = process
        let ready = waitFor(seconds: 30) {
            (try? Fixture.run(TestPostgres.binDir + "/pg_isready", ["-q", "-h", socketDir], timeout: 5).status) == 0
        }
        guard ready else { throw FixtureError("postgres did not start in \(dataDir)") }
    }

    /// A libpq URI for `database` as `user` over the socket.
    func url(database: String, user: String = "postgres") -> String {
        "postgresql://\(user)@/\(database)?host=\(socketDir)"
    }

    /// Runs SQL with psql (ON_ERROR_STOP); returns its unaligned, tuples-only output.
    @discardableResult
    func psql(_ sql: String, database: String = "postgres") throws -> String {
        let result = try Fixture.run("/usr/bin/psql", ["-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-d", url(database: database), "-c", sql],
                                     timeout: 60)
        guard result.status == 0 else { throw FixtureError("psql failed: \(sql)\n\(result.output)") }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// SIGINT: PostgreSQL's fast shutdown; SIGKILL after 10 s; reaped with waitpid.
    func stop() {
        guard let pid = server?.processIdentifier else { return }
        kill(pid, SIGINT)
        let deadline = Date().addingTimeInterval(10)
        var status: Int32 = 0
        while waitpid(pid, &status, WNOHANG) == 0 && Date() < deadline { usleep(20_000) }
        if WorkerApp.isRunning(pid) { kill(pid, SIGKILL); _ = waitpid(pid, &status, 0) }
        server = nil
    }

    deinit { stop() }

    private func waitFor(seconds: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while !condition() && Date() < deadline { usleep(50_000) }
        return condition()
    }
}
