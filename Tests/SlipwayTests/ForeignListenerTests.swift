import Foundation
import Testing
@testable import Slipway
@testable import SlipwayCore

/// The agent binds app listeners with SO_REUSEPORT; as root that could join a root service's
/// socket and take half its connections. A listener held by anything but Slipway's own workers
/// is refused, naming it.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct ForeignListenerTests {
    /// A python SO_REUSEPORT listener on 127.0.0.1 (a free port), carrying the worker marker
    /// unless `plain`.
    final class Listener {
        enum Kind: String {
            /// Another program's socket.
            case plain
            /// Runs as nobody, as a crashed agent's worker holds the socket the agent made.
            case orphan
            /// Still root in a worker's spawn chain: `sh` (a new session) waits for `release()`,
            /// then `setpriv` drops to nobody, as a worker spawned just before its agent was killed.
            case spawning
            /// Root, and stays root: a copied marker.
            case root
            /// No marker, runs as nobody in a worker's cgroup: a helper a worker started with
            /// `env -i` that kept the socket.
            case helper
            /// No marker, root, in a worker's cgroup (a setuid program a worker ran).
            case rootHelper
            /// No marker, runs as nobody, in no worker's cgroup.
            case nobody
            /// Marked, runs as nobody, in no worker's cgroup, holding 1 GB: its exit (SIGKILL)
            /// frees that memory for ~85 ms before it closes its files. A worker whose first act
            /// failed right after its agent was killed.
            case dying
            /// Root, no marker; the holder is its forked child holding 1 GB (it shares the socket).
            case dyingChild
        }

        /// The state dir its marker names: the test's own, so no agent on the host shares it.
        static let stateDir = "/nonexistent/slipway-test-\(UUID().uuidString)"

        let process = Process()
        let port: Int
        /// The process holding the socket: python itself, or with `spawning` its forked child.
        let holder: pid_t
        let fifo: String
        /// The worker's cgroup it runs in (`helper`, `rootHelper`), else empty.
        let group: String

        /// `port`: 0 for a free one; another's to share it (`SO_REUSEPORT`, the same uid).
        init(_ kind: Kind = .plain, port wanted: Int = 0) throws {
            fifo = NSTemporaryDirectory() + "slipway-spawning-\(UUID().uuidString)"
            let script = """
            import os, socket, sys, time
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            s.bind(("127.0.0.1", int(sys.argv[3]))); s.listen(16); port = s.getsockname()[1]
            if sys.argv[4]: open(sys.argv[4] + "/cgroup.procs", "w").write(str(os.getpid()))
            if sys.argv[1] in ("orphan", "helper", "nobody", "dying"): os.setgid(65534); os.setuid(65534)
            holder = os.getpid()
            if sys.argv[1] == "dying":
                memory = b"x" * (1 << 30)
            if sys.argv[1] == "dyingChild":
                r, w = os.pipe()
                holder = os.fork()
                if holder == 0:
                    memory = b"x" * (1 << 30)
                    os.write(w, b"x"); time.sleep(30); os._exit(0)
                os.read(r, 1)
            if sys.argv[1] == "spawning":
                os.mkfifo(sys.argv[2])
                holder = os.fork()
                if holder == 0:
                    # A session of its own, as every worker; dash's read and exec are builtins,
                    # so the chain holds the socket alone, as a worker's does.
                    os.setsid(); os.set_inheritable(s.fileno(), True)
                    os.execv("/bin/sh", ["sh", "-c", 'read x < "$1"; exec /usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups -- /bin/sleep 30', "sh", sys.argv[2]])
                s.close()
            print(port, holder, flush=True)
            time.sleep(30)
            """
            if kind == .helper || kind == .rootHelper, let base = Containment.base {
                group = base + "/w0-\(getpid())-\(String(UInt64.random(in: 0...UInt64.max), radix: 36))"
                mkdir(group, 0o755)
            } else {
                group = ""
            }
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = ["-c", script, kind.rawValue, fifo, String(wanted), group]
            var environment = ["PATH": "/usr/bin:/bin"]
            if ![.plain, .helper, .rootHelper, .nobody, .dyingChild].contains(kind) {
                environment[WorkerMarker.variable] = WorkerMarker.value(stateDir: Self.stateDir, app: AppName("web")!)
                environment["SLIPWAY_RELEASE"] = "20261125T120000Z-aaaaaaa"
            }
            process.environment = environment
            let out = Pipe()
            process.standardOutput = out
            try process.run()
            var line = Data()
            while !line.contains(0x0a) {
                let chunk = out.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                line += chunk
            }
            let fields = String(decoding: line, as: UTF8.self).split(whereSeparator: \.isWhitespace)
            port = fields.first.flatMap { Int($0) } ?? 0
            holder = fields.dropFirst().first.flatMap { pid_t($0) } ?? 0
            if kind == .spawning {
                // Until the forked child runs sh.
                let deadline = Date().addingTimeInterval(10)
                while FileOps.readLink("/proc/\(holder)/exe") != FileOps.resolvedPath("/bin/sh") {
                    guard Date() < deadline else { throw SystemError("wait for the chain to run sh", path: "/proc/\(holder)/exe", code: ETIMEDOUT) }
                    usleep(5_000)
                }
            }
        }

        /// Lets the spawning chain go on to `setpriv`, `seconds` from now.
        func release(in seconds: Double) {
            let path = fifo
            Thread.detachNewThread {
                Thread.sleep(forTimeInterval: seconds)
                // Non-blocking: with the chain killed meanwhile (a failed test), no thread hangs.
                let fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
                if fd >= 0 { _ = write(fd, "go\n", 3); close(fd) }
            }
        }

        deinit {
            unlink(fifo)
            if holder > 1 { kill(holder, SIGKILL) }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            if !group.isEmpty {
                for _ in 0..<100 where rmdir(group) != 0 && errno == EBUSY { usleep(10_000) }
            }
        }
    }

    @Test func aPortAnotherProgramListensOnIsRefusedNamingIt() throws {
        let other = try Listener()
        #expect(other.port > 0)
        let address = WorkerListen.tcp(host: "127.0.0.1", port: other.port)
        #expect {
            let socket = try ListeningSocket.bind(address, appDirectory: "/nonexistent", group: nil)
            socket.close()
        } throws: { error in
            let text = "\(error)"
            return text.hasPrefix("backend.listen 127.0.0.1:\(other.port): another program already listens there, pid \(other.process.processIdentifier) (python3),")
                && text.contains("never joins a listening socket it did not make")
        }
        // The wildcard address overlaps it too.
        #expect(throws: ForeignListeners.Refused.self) {
            try ListeningSocket.bind(.tcp(host: "0.0.0.0", port: other.port), appDirectory: "/nonexistent", group: nil).close()
        }
    }

    @Test(.enabled(if: geteuid() == 0, "needs root: the orphan drops to nobody"))
    func aCrashedAgentsWorkerStillServingIsJoined() throws {
        let orphan = try Listener(.orphan)
        #expect(orphan.port > 0)
        let socket = try ListeningSocket.bind(.tcp(host: "127.0.0.1", port: orphan.port), appDirectory: "/nonexistent", group: nil)
        socket.close()
    }

    /// A worker's helper started with `env -i` (no marker) kept the socket: it is in the worker's
    /// cgroup, which only root places processes in, so it is of the worker's own tree, and the
    /// next agent joins (it refused the port before, and the app stayed down after a kill -9).
    @Test(.enabled(if: geteuid() == 0 && Containment.base != nil, "needs root and cgroup v2"))
    func aHelperAWorkerStartedThatKeptTheSocketIsJoined() throws {
        let helper = try Listener(.helper)
        #expect(helper.port > 0 && !helper.group.isEmpty)
        try ListeningSocket.bind(.tcp(host: "127.0.0.1", port: helper.port), appDirectory: "/nonexistent", group: nil).close()
    }

    /// As an attacker: neither a worker's cgroup alone (a root process in it: a setuid program a
    /// worker ran) nor an account other than root alone (no marker, no worker's group) makes a
    /// holder a worker.
    @Test(.enabled(if: geteuid() == 0 && Containment.base != nil, "needs root and cgroup v2"), arguments: [Listener.Kind.rootHelper, .nobody])
    func aHolderThatIsOnlyInAWorkersGroupOrOnlyNotRootIsRefused(_ kind: Listener.Kind) throws {
        let holder = try Listener(kind)
        #expect(holder.port > 0)
        #expect(throws: ForeignListeners.Refused.self) {
            try ListeningSocket.bind(.tcp(host: "127.0.0.1", port: holder.port), appDirectory: "/nonexistent", group: nil).close()
        }
    }

    /// The agent was killed right after spawning a worker, which is still root in its spawn
    /// chain (it holds the socket from the spawn on): the next agent waits for it to drop to its
    /// account, then joins its socket (`bind`) and finds it by its marker (`find`), instead of
    /// refusing the port (seen once in WorkerTrackingTests' kill -9 at random points) or leaving
    /// it out of the orphans.
    @Test(.enabled(if: geteuid() == 0, "needs root: the chain drops to nobody"), arguments: ["bind", "find"])
    func aWorkerStillRootInItsSpawnChainIsWaitedFor(_ check: String) async throws {
        let spawning = try Listener(.spawning)
        #expect(spawning.port > 0)
        let pid = spawning.holder
        #expect(ProcessTable.uids(of: pid)?.contains(0) == true)
        let clock = ContinuousClock()
        let started = clock.now
        spawning.release(in: 0.3)
        let port = spawning.port
        if check == "bind" {
            try await onOwnThread { try ListeningSocket.bind(.tcp(host: "127.0.0.1", port: port), appDirectory: "/nonexistent", group: nil).close() }
        } else {
            let found = try await onOwnThread { WorkerMarker.find(stateDir: Listener.stateDir, app: AppName("web")!).map(\.pid) }
            #expect(found == [pid])
        }
        #expect(clock.now - started >= .milliseconds(300), "judged before the chain dropped root")
        #expect(ProcessTable.uids(of: pid) == [65534, 65534, 65534, 65534])
    }

    /// The agent was killed right after spawning a worker, whose first act then failed (its
    /// READY to the dead agent's socket) and which exits: while its exit frees its memory, /proc
    /// shows no environment and no program for it, but it still holds the socket. The next agent
    /// refused the port as another program's, and the reload failed for good (seen in
    /// WorkerTrackingTests' kill -9 at random points, in CI and here 2 runs in 12). It is waited
    /// for, and the socket joined once it is gone.
    @Test(.enabled(if: geteuid() == 0, "needs root: the holder drops to nobody"))
    func aWorkerOnItsWayOutIsWaitedForNotRefused() async throws {
        let dying = try Listener(.dying)
        try await Self.bindWhileTheHolderExits(dying)
        #expect(!ProcessTable.isExiting(dying.holder), "joined before the holder was gone")
    }

    /// As an attacker: a holder on its way out is waited for, not taken for a worker, and the
    /// others still holding the socket are judged: a root service whose forked child exits is
    /// refused, naming the service.
    @Test(.enabled(if: geteuid() == 0, "the check of uids is a root agent's"))
    func aRootServiceWhoseChildExitsIsStillRefused() async throws {
        let service = try Listener(.dyingChild)
        await #expect {
            try await Self.bindWhileTheHolderExits(service)
        } throws: { error in
            "\(error)".contains("pid \(service.process.processIdentifier) (python3), and it is not one of Slipway's workers")
        }
    }

    /// A worker's spawn chain execs three or four times back to back, and inside each exec its
    /// environment reads empty for a moment: the marker must still be read (it was missed now and
    /// then, and a worker still in its chain taken for another program: this suite's chain test
    /// failed so once in a run). A process that execs itself 3,000 times is read throughout; the
    /// marker is there in every read (with three tries 1 ms apart, 65 to 182 reads in three runs
    /// missed it).
    @Test func theMarkerIsReadInTheMiddleOfAnExec() throws {
        let script = NSTemporaryDirectory() + "slipway-execs-\(UUID().uuidString).sh"
        try "n=$1; [ \"$n\" -ge 3000 ] && exec /bin/sleep 30; exec /bin/sh \"$0\" $((n+1))\n".write(toFile: script, atomically: true, encoding: .utf8)
        defer { unlink(script) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = [script, "0"]
        process.environment = ["MARKER": "yes"]
        try process.run()
        defer { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        let pid = process.processIdentifier
        let sleep = FileOps.resolvedPath("/bin/sleep")
        var reads = 0, missed = 0
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, FileOps.readLink("/proc/\(pid)/exe") != sleep {
            let environ = WorkerMarker.environment(of: pid) ?? []
            reads += 1
            if !environ.split(separator: 0).contains(where: { $0.elementsEqual(Array("MARKER=yes".utf8)) }) { missed += 1 }
        }
        #expect(reads > 100, "too few reads while it execed: the test proves nothing")
        #expect(missed == 0, "the marker was missed in \(missed) of \(reads) reads")
    }

    /// Kills the listener's holder and binds its port once the holder is exiting with its memory
    /// gone and the socket still held (the state the check must judge).
    static func bindWhileTheHolderExits(_ listener: Listener) async throws {
        let pid = listener.holder, port = listener.port
        try #require(port > 0 && pid > 0)
        kill(pid, SIGKILL)
        #expect(waitForItsWayOut(pid), "never saw the exit with the memory gone and the socket held: the test proves nothing")
        try await onOwnThread { try ListeningSocket.bind(.tcp(host: "127.0.0.1", port: port), appDirectory: "/nonexistent", group: nil).close() }
    }

    /// Until `pid` is exiting with no environment left to read and the socket still among its
    /// fds; false if it was never seen in 5 s.
    static func waitForItsWayOut(_ pid: pid_t) -> Bool {
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
            let holds = fds.contains { FileOps.readLink("/proc/\(pid)/fd/\($0)")?.hasPrefix("socket:") == true }
            if ProcessTable.isExiting(pid), (FileOps.readFile("/proc/\(pid)/environ") ?? []).isEmpty, holds { return true }
            if !ProcessTable.isRunning(pid) { return false }
            usleep(200)
        }
        return false
    }

    /// A wait leaves time for another program to listen on the port (a root service joined
    /// through `SO_REUSEPORT` would lose half its connections): the tables are read again after it.
    @Test(.enabled(if: geteuid() == 0, "needs root: the chain drops to nobody"))
    func aListenerThatAppearsWhileAChainIsWaitedForIsRefused() async throws {
        let spawning = try Listener(.spawning)
        spawning.release(in: 0.4)
        final class Late: @unchecked Sendable {
            let lock = NSLock()
            var listener: Listener?
            var done = false
        }
        let late = Late()
        let port = spawning.port
        Thread.detachNewThread {
            Thread.sleep(forTimeInterval: 0.1)
            let listener = try? Listener(.plain, port: port)
            late.lock.withLock { late.listener = listener; late.done = true }
        }
        defer {
            // Its python is killed here, once the thread has made it.
            for _ in 0..<1000 where !late.lock.withLock({ late.done }) { usleep(10_000) }
            late.lock.withLock { late.listener = nil }
        }
        await #expect {
            try await onOwnThread { try ListeningSocket.bind(.tcp(host: "127.0.0.1", port: port), appDirectory: "/nonexistent", group: nil).close() }
        } throws: { error in
            let pid = late.lock.withLock { late.listener?.holder }
            return pid.map { "\(error)".contains("pid \($0) (python3)") } ?? false
        }
    }

    /// As an attacker: a root process carrying a copied marker is refused, within the chain's
    /// patience, and is no worker to be found.
    @Test(.enabled(if: geteuid() == 0, "the check of uids is a root agent's"))
    func aRootProcessWithACopiedMarkerIsRefusedInBoundedTime() async throws {
        let clock = ContinuousClock()
        let root = try Listener(.root)
        let started = clock.now
        let rootPort = root.port
        await #expect(throws: ForeignListeners.Refused.self) {
            try await onOwnThread { try ListeningSocket.bind(.tcp(host: "127.0.0.1", port: rootPort), appDirectory: "/nonexistent", group: nil).close() }
        }
        // python3 is no program of the spawn chain: refused at once, not after the patience.
        #expect(clock.now - started < .seconds(1))
        #expect(WorkerMarker.find(stateDir: Listener.stateDir, app: AppName("web")!).isEmpty)
        // A spawn chain that never drops root is refused once its patience is over.
        let stuck = try Listener(.spawning)
        let waited = clock.now
        let stuckPort = stuck.port
        await #expect(throws: ForeignListeners.Refused.self) {
            try await onOwnThread { try ListeningSocket.bind(.tcp(host: "127.0.0.1", port: stuckPort), appDirectory: "/nonexistent", group: nil).close() }
        }
        #expect(clock.now - waited >= .seconds(2) && clock.now - waited < .seconds(5))
    }

    @Test func theTablesAreReadAsTheKernelPrintsThem() {
        let v4 = ForeignListeners.parse("   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0")
        #expect(v4 == .init(address: [127, 0, 0, 1], port: 8080, inode: 12345))
        let mapped = ForeignListeners.parse("   1: 0000000000000000FFFF00000100007F:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1")
        #expect(mapped?.address == [127, 0, 0, 1] && mapped?.port == 80)
        #expect(ForeignListeners.parse("   2: 0100007F:1F90 0100007F:A000 01 00000000:00000000 00:00000000 00000000     0        0 1 1") == nil)
        #expect(ForeignListeners.overlaps([0, 0, 0, 0], [127, 0, 0, 1]) && !ForeignListeners.overlaps([127, 0, 0, 2], [127, 0, 0, 1]))
    }
}
