import Foundation
import Testing

/// The agent under systemd's `Type=notify`: the test plays systemd's side of NOTIFY_SOCKET.
@Suite(.serialized, .endToEnd)
struct SystemdNotifyTests {
    /// A datagram socket bound at `path` (or in the abstract namespace for "@name").
    static func listen(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (bytes.first == 0 ? 0 : 1))
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard fd >= 0, bound == 0 else { throw FixtureError("cannot bind \(path): \(String(cString: strerror(errno)))") }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    /// Datagrams received until `until` holds for one of them or `seconds` pass.
    static func receive(_ fd: Int32, seconds: Double, until: (String) -> Bool) -> [String] {
        var messages: [String] = []
        let deadline = Date().addingTimeInterval(seconds)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while Date() < deadline {
            let count = recv(fd, &buffer, buffer.count, 0)
            guard count > 0 else { continue }
            let message = String(decoding: buffer[..<count], as: UTF8.self)
            messages.append(message)
            if until(message) { break }
        }
        return messages
    }

    @Test(arguments: ["path", "abstract"])
    func readyAfterTheFirstPassStatusAfterEachAndStoppingOnSIGTERM(_ kind: String) throws {
        let f = try Fixture(name: "notify")
        let v1 = try f.commitSource(["index.html": "v1"])
        try f.commitManifest("demo.yaml", f.manifest(ref: v1))
        let socketPath = kind == "path" ? f.root + "/notify.sock" : "@slipway-test-\(UUID().uuidString.prefix(8))"
        let fd = try Self.listen(socketPath)
        defer { close(fd); if kind == "path" { unlink(socketPath) } }

        let agent = Process()
        agent.executableURL = URL(fileURLWithPath: Fixture.binary)
        agent.arguments = ["agent", "--config", f.configPath]
        agent.environment = ProcessInfo.processInfo.environment.merging(["NOTIFY_SOCKET": socketPath]) { $1 }
        agent.standardOutput = FileHandle.nullDevice
        agent.standardError = FileHandle.nullDevice
        try agent.run()
        defer { if agent.isRunning { kill(agent.processIdentifier, SIGKILL); agent.waitUntilExit() } }

        let first = Self.receive(fd, seconds: 60) { $0.contains("READY=1") }
        let ready = try #require(first.last, "no READY=1 within 60 s")
        #expect(ready.contains("READY=1") && ready.contains("STATUS=converged"), "\(first)")
        #expect(f.current() != nil, "READY=1 came after the first pass had deployed")

        // A pass that fails to deploy still reports, without a second READY=1.
        let v2 = try f.commitSource(["index.html": "v2"])
        try f.commitManifest("demo.yaml", f.manifest(ref: v2, backendBuild: "exit 4"))
        _ = try f.slipway(["deploy"])
        let second = Self.receive(fd, seconds: 60) { $0.contains("STATUS=") }
        #expect(second.last?.contains("STATUS=unsettled: demo") == true && second.last?.contains("READY=1") == false, "\(second)")

        kill(agent.processIdentifier, SIGTERM)
        let stopping = Self.receive(fd, seconds: 30) { $0.contains("STOPPING=1") }
        #expect(stopping.last?.contains("STOPPING=1") == true, "\(stopping)")
        let deadline = Date().addingTimeInterval(20)
        while agent.isRunning && Date() < deadline { usleep(20_000) }
        #expect(!agent.isRunning)
    }
}
