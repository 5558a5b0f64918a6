import Foundation
import Testing
@testable import Slipway
@testable import SlipwayCore

/// The supervisor's executors against real processes, sockets and files.
@Suite(.timeLimit(.minutes(2)))
struct SupervisorExecutorTests {
    /// Starts `python3 -c code` as a worker with the listener as fd 3.
    func startWorker(_ code: String, in dir: TempDir, listener: ListeningSocket?, notify: NotifySocket? = nil,
                     account: AppAccount? = nil, log: WorkerLog) throws -> WorkerProcess {
        let shell = ["/bin/sh", "-c", WorkerCommand.shellLine("python3 -c \(Self.shellQuoted(code))")]
        var environment = ["PATH": "/usr/bin:/bin", "LISTEN_FDS": "1"]
        environment["NOTIFY_SOCKET"] = notify?.path
        chmod(dir.path, 0o755)
        return try WorkerProcess.start(.init(argv: account.map { $0.wrap(shell) } ?? shell, environment: environment, directory: dir.path,
                                             listener: listener?.fd, notify: notify, log: log, slot: 0, generation: "g",
                                             release: ReleaseID("20261125T170000Z-abcdef1")!, display: "python3", changes: ChangeSignal()))
    }

    static func shellQuoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    @Test func aWorkerGetsTheListenerAsFD3AndLISTEN_PIDIsItsOwnPid() async throws {
        let dir = TempDir()
        // A free port: a few random tries (another test may hold one).
        var bound: (port: Int, socket: ListeningSocket)?
        for _ in 0..<20 where bound == nil {
            let port = Int.random(in: 20_000...60_000)
            if let socket = try? ListeningSocket.bind(.tcp(host: "127.0.0.1", port: port), appDirectory: dir.path, group: nil) {
                bound = (port, socket)
            }
        }
        let (port, listener) = try #require(bound)
        defer { listener.close() }
        let log = WorkerLog(path: dir.path + "/workers.log")
        let worker = try startWorker("""
        import os, socket
        s = socket.socket(fileno=3)
        print("pid-ok" if os.environ["LISTEN_PID"] == str(os.getpid()) else "pid-wrong", s.getsockname()[1], os.getuid(), flush=True)
        s.setblocking(True)
        conn, _ = s.accept()
        conn.sendall(b"hello from fd 3"); conn.close()
        """, in: dir, listener: listener, log: log)
        let reply = await Task.detached { () -> String in
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else { return "connect failed" }
            var buffer = [UInt8](repeating: 0, count: 64)
            let count = read(fd, &buffer, 64)
            return String(decoding: buffer.prefix(max(0, count)), as: UTF8.self)
        }.value
        #expect(reply == "hello from fd 3")
        for _ in 0..<500 where worker.exit == nil { try await Task.sleep(for: .milliseconds(10)) }
        #expect(worker.exit == .exited(0))
        let text = try String(contentsOfFile: log.path, encoding: .utf8)
        #expect(text.contains("[w0 \(worker.pid)] out: pid-ok \(port) \(getuid())"), "\(text)")
        #expect(text.contains("[w0 \(worker.pid)] slipway: exited: exited with status 0"))
    }

    @Test func asRootTheWorkerRunsAsTheAppsAccountWithTheSamePid() async throws {
        try #require(geteuid() == 0, "needs root to switch accounts")
        let dir = TempDir()
        let log = WorkerLog(path: dir.path + "/workers.log")
        let nobody = try AppAccount.lookup("nobody")
        let worker = try startWorker("import os; print('ids', os.getuid(), os.getgid(), os.getpid(), os.environ['LISTEN_PID'], flush=True)",
                                     in: dir, listener: nil, account: nobody, log: log)
        for _ in 0..<200 where worker.exit == nil { try await Task.sleep(for: .milliseconds(10)) }
        let text = try String(contentsOfFile: log.path, encoding: .utf8)
        #expect(text.contains("out: ids \(nobody.uid) \(nobody.gid) \(worker.pid) \(worker.pid)"), "\(text)")
        #expect(throws: AppAccount.Missing.self) { try AppAccount.lookup("no-such-account-here") }
    }

    @Test func readinessComesFromREADY1OnTheWorkersOwnNotifySocket() async throws {
        let dir = TempDir()
        let log = WorkerLog(path: dir.path + "/workers.log")
        let notify = try NotifySocket(path: dir.path + "/n.sock", owner: nil)
        let worker = try startWorker("""
        import os, socket, time
        time.sleep(0.3)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.sendto(b"STATUS=warming up\\nREADY=1", os.environ["NOTIFY_SOCKET"])
        time.sleep(600)  # outlives any starvation of this test's task; stopped below
        """, in: dir, listener: nil, notify: notify, log: log)
        let started = ContinuousClock.now
        // The end-to-end tests beside this one can starve this task for tens of seconds (see
        // ChildProcessTests); the READY=1 is recorded by the watcher thread meanwhile.
        let readiness = await worker.waitReady(notify: true, timeout: .seconds(120), settle: .seconds(1))
        #expect(readiness == .ready, "\(readiness): \((try? String(contentsOfFile: log.path, encoding: .utf8)) ?? "")")
        #expect(ContinuousClock.now - started >= .milliseconds(250))
        #expect(worker.snapshot.status == "warming up")
        await worker.stop(signal: SIGTERM, timeout: .seconds(5), log: log)

        // No READY=1 in time: timed out. Exited first: says how.
        let silent = try startWorker("import time; time.sleep(600)", in: dir, listener: nil,
                                     notify: try NotifySocket(path: dir.path + "/m.sock", owner: nil), log: log)
        #expect(await silent.waitReady(notify: true, timeout: .milliseconds(300), settle: .seconds(1)) == .timedOut)
        await silent.stop(signal: SIGTERM, timeout: .seconds(5), log: log)
        let crash = try startWorker("raise SystemExit(4)", in: dir, listener: nil, log: log)
        #expect(await crash.waitReady(notify: false, timeout: .seconds(5), settle: .seconds(1)) == .exited(.exited(4)))
    }

    @Test func theWholeProcessGroupIsStoppedAndStraysAreKilled() async throws {
        let dir = TempDir()
        let log = WorkerLog(path: dir.path + "/workers.log")
        // The worker starts a child that ignores SIGTERM, then ignores it itself.
        let worker = try startWorker("""
        import os, signal, subprocess, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen(["python3", "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
        print("child", child.pid, flush=True)
        time.sleep(600)
        """, in: dir, listener: nil, log: log)
        var child: pid_t?
        for _ in 0..<300 where child == nil {
            try await Task.sleep(for: .milliseconds(10))
            let text = (try? String(contentsOfFile: log.path, encoding: .utf8)) ?? ""
            child = text.split(separator: "\n").first { $0.contains("out: child ") }.flatMap { pid_t($0.split(separator: " ").last ?? "") }
        }
        let childPID = try #require(child)
        let started = ContinuousClock.now
        let (termination, killed) = await worker.stop(signal: SIGTERM, timeout: .milliseconds(500), log: log)
        #expect(killed && termination == .signalled(SIGKILL))
        #expect(ContinuousClock.now - started >= .milliseconds(500))
        try await Task.sleep(for: .milliseconds(200))
        #expect(!ProcessTable.isRunning(childPID), "the child \(childPID) survived")
    }

    @Test func theLogRotatesBySizeAndTheReaderFollowsAcrossARotation() throws {
        let dir = TempDir()
        let log = WorkerLog(path: dir.path + "/workers.log", maxSize: 4096, keep: 2)
        let reader = WorkerLogReader(path: log.path)
        log.note("first")
        let start = reader.end()
        for index in 0..<300 { log.write(Array("line \(index)".utf8), worker: "w0 1", stream: "out") }
        for file in [log.path, log.path + ".1", log.path + ".2"] { #expect(FileManager.default.fileExists(atPath: file), "\(file)") }
        #expect(!FileManager.default.fileExists(atPath: log.path + ".3"))
        let size = (try FileManager.default.attributesOfItem(atPath: log.path)[.size] as? Int) ?? 0
        #expect(size <= 4096)
        #expect(reader.lastLines(3).map { $0.hasSuffix("out: line 299") } == [false, false, true])
        // Reading from before a rotation: the rest of the rotated file, then the new one.
        let small = WorkerLog(path: dir.path + "/small.log", maxSize: 300, keep: 1)
        let smallReader = WorkerLogReader(path: small.path)
        small.note("a")
        let position = smallReader.end()
        small.note("b")
        for index in 0..<3 { small.note("c\(index)") }
        let (lines, _) = smallReader.read(from: position)
        #expect(lines.first?.hasSuffix("slipway: b") == true, "\(lines)")
        #expect(lines.last?.hasSuffix("slipway: c2") == true, "\(lines)")
        // A runaway line is cut.
        log.write([UInt8](repeating: 0x41, count: 100_000), worker: "w0 1", stream: "out")
        #expect(reader.lastLines(1).first?.hasSuffix("[line cut at 16384 bytes]") == true)
        _ = start
    }

    @Test func anEnvFileMustBeTheAppsOwnInsideEnvDirAndNotEscapeByASymlink() throws {
        let dir = TempDir()
        let app = AppName("app")!
        try FileOps.makeDirectories(dir.path + "/env/app")
        try FileOps.writeAtomically(Array("A=1\n".utf8), to: dir.path + "/env/app.env")
        try FileOps.writeAtomically(Array("B=2\n".utf8), to: dir.path + "/env/app/more.env")
        try FileOps.writeAtomically(Array("API_KEY=billing\n".utf8), to: dir.path + "/env/billing.env")
        try FileOps.writeAtomically(Array("SECRET=x\n".utf8), to: dir.path + "/outside.env")
        symlink(dir.path + "/outside.env", dir.path + "/env/app/link.env")
        func read(_ path: String) throws -> [Manifest.EnvVar] { try AppEnvironment.readEnvFile(dir.path + path, envDir: dir.path + "/env", app: app) }
        #expect(try read("/env/app.env") == [.init(name: "A", value: "1")])
        #expect(try read("/env/app/more.env") == [.init(name: "B", value: "2")])
        // Another app's secrets, by name: refused whatever the file system says.
        do {
            _ = try read("/env/billing.env")
            Issue.record("app read billing's env_file")
        } catch {
            #expect("\(error)".contains("is not app app's: an app's env_file is \(dir.path)/env/app.env or lies in \(dir.path)/env/app/"))
        }
        #expect(throws: AppEnvironment.Problem.self) { try read("/outside.env") }
        #expect(throws: AppEnvironment.Problem.self) { try read("/env/app/link.env") }
        #expect(throws: AppEnvironment.Problem.self) { try read("/env/app/../billing.env") }
        #expect(throws: AppEnvironment.Problem.self) { try read("/env/app/missing.env") }
    }

    @Test func procReportsStartTimesAndGroupMemory() {
        #expect(ProcessTable.startTime(of: getpid()) != nil)
        #expect(ProcessTable.startTime(of: 999_999_999) == nil)
        let rss = ProcessTable.residentBytes(ofGroups: [getpgrp()])
        #expect((rss[getpgrp()] ?? 0) > 1 << 20)
    }
}
