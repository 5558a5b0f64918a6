import Foundation
import Testing

/// An Express app written as Express's docs write it, `app.listen(process.env.PORT || 3000)`,
/// runs as 4 workers and reloads with no failed request: Slipway's Node preload hands its
/// listen() fd 3. Without the preload it gets an error that names the port and the fix.
@Suite(.serialized, .endToEnd) struct NodePreloadTests {
    static let expressApp = """
    const express = require('express')
    const app = express()
    const port = process.env.PORT || 3000

    app.get('/api/hello', (req, res) => {
      res.set('X-Release', process.env.SLIPWAY_RELEASE)
      res.send('Hello World!')
    })

    app.listen(port, () => {
      console.log(`Example app listening on port ${port}`)
    })

    // Any other port is the app's own business.
    if (process.env.ADMIN_PORT && process.env.SLIPWAY_WORKER === '0') {
      const admin = require('http').createServer((req, res) => res.end('admin'))
      admin.on('error', () => {})  // the worker it replaces still holds it during a reload
      admin.listen(Number(process.env.ADMIN_PORT))
    }
    """

    @Test func anUnmodifiedExpressAppReloadsUnderLoadWithNoFailure() throws {
        let admin = try WorkerApp.freePort()
        let app = try FrameworkApp(files: ["app.js": Self.expressApp], backend: """
        command: node app.js
        health: {path: /api/hello}
        """, instances: 4, env: ["NODE_PATH": "/usr/share/nodejs", "ADMIN_PORT": String(admin)])
        try app.start()
        #expect(try app.get("/api/hello").body == "Hello World!")
        #expect(try app.get("/", port: admin).body == "admin", "a listen() on another port is left alone")
        #expect(app.workerLog.contains("Example app listening on port \(app.port)"))
        let matrix = try app.deploysUnderLoad(3)
        print("express unmodified, 4 workers, 3 deploys: retrying \(matrix.retrying.line); non-retrying \(matrix.nonRetrying.line)")
        #expect(matrix.retrying.requests > 100)
        #expect(matrix.retrying.failed == 0, "\(matrix.retrying.errors)")
        #expect(matrix.nonRetrying.requests > 100)
        #expect(try app.workers().count == 4)
        // The preload drained each old worker itself (the app has no signal handler): no SIGKILL.
        #expect(!app.workerLog.contains("still running after"), "\(app.workerLog)")
    }

    @Test func withoutThePreloadTheFailureNamesThePortAndTheFix() throws {
        let app = try FrameworkApp(files: ["app.js": Self.expressApp], backend: """
        command: node app.js
        preload: false
        ready: {timeout: 20s}
        """, instances: 1, env: ["NODE_PATH": "/usr/share/nodejs"])
        try app.startAgent()
        var message = ""
        app.f.waitUntil(seconds: 60) {
            message = (try? app.f.appStatus())?["message"] as? String ?? ""
            return message.contains("exited")
        }
        // Dead within the settle, it is a failed start; dead after it (Node booting slowly on a
        // busy host), a crash loop: either way the message names the port and the fix.
        #expect(message.contains("worker 0 exited with status 1"), "\(message)\n\(app.agentLog)")
        #expect(message.contains(": it binds port \(app.port) itself (address already in use)"), "\(message)\n\(app.agentLog)")
        #expect(message.contains("docs/workers.md, \"The socket: fd 3\""))
        #expect(message.contains("backend.preload: false turns off Slipway's Node preload"))
    }
}
