import Testing
@testable import SlipwayCore

/// What issue 18 added to the backend's fields: the Node preload switch, every graceful stop
/// signal, refusing `VAR=value` commands, and the explanation of a worker that bound its port.
@Suite struct FrameworkFieldsTests {
    func decode(_ backend: String) -> Result<Manifest, Diagnostics> { WorkersTests().decode(backend) }
    func problems(_ backend: String) -> [String] { WorkersTests().problems(backend) }

    @Test func preloadIsOnUnlessTurnedOff() throws {
        #expect(try decode("  command: node app.js\n").get().backend?.workers?.preload == true)
        #expect(try decode("  command: node app.js\n  preload: false\n").get().backend?.workers?.preload == false)
        #expect(problems("  command: node app.js\n  preload: maybe\n").count == 1)
        #expect(problems("  preload: false\n").first?.contains("has no effect without backend.command") == true)
    }

    @Test func everyGracefulStopSignalIsAccepted() throws {
        let expected: [String: Int32] = ["SIGINT": 2, "SIGTERM": 15, "SIGQUIT": 3, "SIGHUP": 1, "SIGUSR1": 10, "SIGUSR2": 12, "SIGWINCH": 28]
        for (name, number) in expected {
            let workers = try #require(try decode("  command: ./serve\n  stop: {signal: \(name.dropFirst(3).lowercased())}\n").get().backend?.workers)
            #expect(workers.stop.signal.rawValue == name && workers.stop.signal.number == number)
        }
        let refused = problems("  command: ./serve\n  stop: {signal: SIGKILL}\n")
        #expect(refused.count == 1)
        #expect(refused.first?.contains("must be one of SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, not 'SIGKILL'") == true)
    }

    @Test func aCommandThatStartsWithAnAssignmentIsRefused() {
        let found = problems("  command: PORT=4000 node app.js\n")
        #expect(found.count == 1)
        #expect(found.first?.hasPrefix("m.yaml:4:12: backend.command starts with the variable assignment 'PORT=4000'") == true)
        #expect(found.first?.contains("variables go in the manifest's env (env: {PORT: \"4000\"})") == true)
        #expect(problems("  command: exec NODE_ENV=production node app.js\n").count == 1)
        // Not assignments: an argument with '=', a program whose name holds none.
        #expect(problems("  command: node app.js --port=4000\n").isEmpty)
        #expect(problems("  command: ./bin/serve\n").isEmpty)
        #expect(WorkerCommand.leadingAssignment(in: "=x node") == nil && WorkerCommand.leadingAssignment(in: "1A=x node") == nil)
    }

    @Test func theProgramNameIsTheFirstWordsFileName() {
        #expect(WorkerCommand.programName(of: "node server.js") == "node")
        #expect(WorkerCommand.programName(of: "exec /usr/bin/nodejs server.js") == "nodejs")
        #expect(WorkerCommand.programName(of: "  gunicorn app:app") == "gunicorn")
        #expect(WorkerCommand.programName(of: "\"node\" x") == nil)
    }

    @Test func addressInUseNamesThePortAndTheFix() throws {
        let node = ["node:events:495", "      throw er; // Unhandled 'error' event", "Error: listen EADDRINUSE: address already in use 127.0.0.1:41234",
                    "  code: 'EADDRINUSE',", "  port: 41234"]
        let text = try #require(AddressInUse.explanation(output: node, listen: .tcp(host: "127.0.0.1", port: 41234)))
        #expect(text.hasPrefix("it binds port 41234 itself (address already in use), but Slipway already listens on 127.0.0.1:41234 and hands that socket to every worker as fd 3"))
        #expect(text.contains("docs/workers.md, \"The socket: fd 3\""))
        // Without a listen address: only one process can bind it.
        let alone = try #require(AddressInUse.explanation(output: ["Error: listen EADDRINUSE: address already in use :::3000"], listen: nil))
        #expect(alone.hasPrefix("port 3000 is already in use: the app binds it itself") && alone.contains("'backend.listen: 127.0.0.1:3000'"))
        // Another port than PORT.
        let other = try #require(AddressInUse.explanation(output: ["listen tcp :8080: bind: address already in use"], listen: .tcp(host: "127.0.0.1", port: 9000)))
        #expect(other.contains("it binds 8080, not the PORT Slipway sets (9000)"))
        #expect(AddressInUse.explanation(output: ["listening", "Error: ENOENT"], listen: nil) == nil)
    }

    @Test func portsAreReadFromEachFrameworksMessage() {
        #expect(AddressInUse.port(in: "Error: listen EADDRINUSE: address already in use :::3000") == 3000)
        #expect(AddressInUse.port(in: "listen EADDRINUSE: address already in use [::1]:4001") == 4001)
        #expect(AddressInUse.port(in: "listen tcp 127.0.0.1:8080: bind: address already in use") == 8080)
        #expect(AddressInUse.port(in: "Address already in use - bind(2) for \"0.0.0.0\" port 9292 (Errno::EADDRINUSE)") == 9292)
        #expect(AddressInUse.port(in: "[ERROR] Connection in use: ('0.0.0.0', 8000)") == 8000)
        #expect(AddressInUse.port(in: "OSError: [Errno 98] Address already in use") == nil)
    }
}
