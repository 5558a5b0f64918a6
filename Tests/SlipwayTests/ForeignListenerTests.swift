import Foundation
import Testing
@testable import Slipway
@testable import SlipwayCore

/// The agent binds app listeners with SO_REUSEPORT; as root that could join a root service's
/// socket and take half its connections. A listener held by anything but Slipway's own workers
/// is refused, naming it.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct ForeignListenerTests {
    /// A python SO_REUSEPORT listener on 127.0.0.1 (a free port); with `asOrphan`, it then runs
    /// as nobody with the worker marker, as a crashed agent's worker holds the socket the agent made.
    final class Listener {
        let process = Process()
        let port: Int

        init(asOrphan: Bool = false) throws {
            let script = """
            import os, socket, sys, time
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            s.bind(("127.0.0.1", 0)); s.listen(16)
            if len(sys.argv) > 1: os.setgid(65534); os.setuid(65534)
            print(s.getsockname()[1], flush=True)
            time.sleep(30)
            """
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = ["-c", script] + (asOrphan ? ["orphan"] : [])
            var environment = ["PATH": "/usr/bin:/bin"]
            if asOrphan { environment[WorkerMarker.variable] = "/var/lib/slipway/state/workers/web.json" }
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
            port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        }

        deinit {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
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
        let orphan = try Listener(asOrphan: true)
        #expect(orphan.port > 0)
        let socket = try ListeningSocket.bind(.tcp(host: "127.0.0.1", port: orphan.port), appDirectory: "/nonexistent", group: nil)
        socket.close()
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
