import Foundation
import Testing

/// docs/frameworks.md's WebSocket recipe (Debian's node-ws): the server closes its clients with
/// 1001 on the stop signal, the client reconnects with a backoff and resends what was not
/// acknowledged. Through 3 deploys no message is lost, and no old worker waits for SIGKILL.
@Suite(.serialized, .endToEnd) struct WebSocketRecipeTests {
    static let server = """
    const http = require('http')
    const { WebSocketServer } = require('ws')

    const release = process.env.SLIPWAY_RELEASE
    const server = http.createServer((req, res) => { res.setHeader('X-Release', release); res.end('ok') })
    const wss = new WebSocketServer({ server, path: '/api/ws' })
    wss.on('connection', (ws) => ws.on('message', (data) => ws.send(`${release} ${data}`)))
    server.listen(process.env.PORT || 3000)

    process.on('SIGTERM', () => {
      server.close()                                   // stop accepting
      for (const ws of wss.clients) ws.close(1001, 'server restarting')
      setInterval(() => { if (wss.clients.size === 0) process.exit(0) }, 50)
    })
    """

    @Test func clientsReconnectThroughDeploysAndNoMessageIsLost() throws {
        let app = try FrameworkApp(files: ["server.js": Self.server], backend: """
        command: node server.js
        health: {path: /api/health}
        stop: {signal: SIGTERM, timeout: 10s}
        """, instances: 2, env: ["NODE_PATH": "/usr/share/nodejs"])
        app.healthPath = "/api/health"
        try app.start()
        let stopFile = app.f.scratch + "/ws-stop"
        let output = app.f.scratch + "/ws.json"
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        let client = Process()
        client.executableURL = URL(fileURLWithPath: "/usr/bin/node")
        client.arguments = [WorkerApp.packageRoot + "/Tests/EndToEndTests/Support/wsclient.js", "ws://127.0.0.1:\(app.port)/api/ws", stopFile]
        client.environment = ["NODE_PATH": "/usr/share/nodejs", "PATH": "/usr/bin:/bin"]
        client.standardOutput = FileHandle(forWritingAtPath: output)
        client.standardError = FileHandle.nullDevice
        try client.run()
        defer { if client.isRunning { kill(client.processIdentifier, SIGKILL) } }
        usleep(500_000)
        let clock = ContinuousClock()
        var longest = Duration.zero
        for version in 2...4 {
            let started = clock.now
            let result = try app.deploy("v\(version)")
            longest = max(longest, clock.now - started)
            #expect(result.status == 0, "\(result.output)")
        }
        _ = FileManager.default.createFile(atPath: stopFile, contents: nil)
        let deadline = Date().addingTimeInterval(20)
        while client.isRunning && Date() < deadline { usleep(20_000) }
        let data = FileManager.default.contents(atPath: output) ?? Data()
        let summary = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any], "\(String(decoding: data, as: UTF8.self))")
        print("websocket recipe, 3 deploys: \(summary); longest deploy \(longest)")
        #expect(summary["lost"] as? Int == 0)
        #expect((summary["sent"] as? Int ?? 0) > 100)
        // Each deploy replaces both workers: the client reconnected, each time told 1001.
        let codes = summary["closeCodes"] as? [String: Int] ?? [:]
        #expect((codes["1001"] ?? 0) >= 3 && codes.keys.allSatisfy { $0 == "1001" }, "\(codes)")
        #expect((summary["releases"] as? [String: Int] ?? [:]).count >= 3)
        #expect(!app.workerLog.contains("still running after"), "an old worker had to be killed: \(app.workerLog)")
    }
}
