import Crypto
import Foundation
import Testing

/// `on_deploy` hooks: a command and a webhook (a real receiver on loopback) get the facts of each
/// deploy, success and failure alike; a hook that hangs never delays the next deploy.
@Suite(.endToEnd)
struct DeployHookTests {
    /// A loopback HTTP server (Python's http.server) that records every request as a JSON line.
    final class Receiver {
        let process = Process()
        let port: Int
        let log: String

        init(in root: String) throws {
            log = root + "/received.jsonl"
            let portFile = root + "/receiver.port"
            let script = """
            import http.server, json, sys
            class H(http.server.BaseHTTPRequestHandler):
                def do_POST(self):
                    body = self.rfile.read(int(self.headers.get('Content-Length', 0))).decode()
                    with open(sys.argv[1], 'a') as f:
                        f.write(json.dumps({'path': self.path, 'headers': dict(self.headers), 'body': body}) + '\\n')
                    self.send_response(200); self.end_headers()
                def log_message(self, *a): pass
            s = http.server.HTTPServer(('127.0.0.1', 0), H)
            open(sys.argv[2], 'w').write(str(s.server_port))
            s.serve_forever()
            """
            try script.write(toFile: root + "/receiver.py", atomically: true, encoding: .utf8)
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", root + "/receiver.py", log, portFile]
            try process.run()
            let deadline = Date().addingTimeInterval(20)
            var port = 0
            while port == 0 && Date() < deadline {
                port = (try? String(contentsOfFile: portFile, encoding: .utf8)).flatMap { Int($0) } ?? 0
                usleep(20_000)
            }
            self.port = port
        }

        deinit {
            // SIGKILL: children of the test runner inherit its blocked signal mask, so SIGTERM may never arrive.
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }

        var requests: [[String: Any]] {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        }
    }

    @Test func commandAndWebhookGetTheFactsOfSuccessesAndFailures() throws {
        let f = try Fixture(name: "hooks")
        let receiver = try Receiver(in: f.root)
        #expect(receiver.port > 0)
        let secret = "hook-secret"
        try f.write(secret + "\n", to: f.root + "/hook.secret")
        let facts = f.root + "/facts.txt"
        try f.write(f.read(f.configPath)! + """

        on_deploy:
          - command: "env | grep ^SLIPWAY_ | sort >> \(facts); echo --- >> \(facts)"
            timeout: 10s
          - webhook: http://127.0.0.1:\(receiver.port)/deploys
            secret_file: \(f.root)/hook.secret
            timeout: 2s
        """, to: f.configPath)

        let sha = try f.commitSource(["index.html": "v1"])
        try f.commitManifest("demo.yaml", f.manifest(ref: sha))
        #expect(try f.pass().status == 0)
        let release = try #require(f.current())
        let success = f.read(facts) ?? ""
        for line in ["SLIPWAY_APP=demo", "SLIPWAY_HOST=web-1", "SLIPWAY_SHA=\(sha)", "SLIPWAY_RELEASE=\(release)",
                     "SLIPWAY_RESULT=succeeded", "SLIPWAY_STAGE=prune", "SLIPWAY_ERROR="] {
            #expect(success.contains(line + "\n"), "missing \(line)")
        }
        let first = try #require(receiver.requests.first)
        #expect(first["path"] as? String == "/deploys")
        let body = try #require(first["body"] as? String)
        let payload = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: String]
        #expect(payload?["result"] == "succeeded")
        #expect(payload?["release"] == release)
        #expect(payload?["sha"] == sha)
        // Signed like the notifications: HMAC-SHA256 over "<timestamp>.<body>".
        let headers = first["headers"] as? [String: String] ?? [:]
        let timestamp = try #require(headers["X-Slipway-Timestamp"])
        let mac = HMAC<SHA256>.authenticationCode(for: Array("\(timestamp).\(body)".utf8), using: SymmetricKey(data: Array(secret.utf8)))
        #expect(headers["X-Slipway-Signature"] == "sha256=" + mac.map { String(format: "%02x", $0) }.joined())

        // A failed deploy reports its stage and error.
        let bad = try f.commitSource(["index.html": "v2"])
        try f.commitManifest("demo.yaml", f.manifest(ref: bad, backendBuild: "exit 4"))
        #expect(try f.pass().status != 0)
        let failure = (f.read(facts) ?? "").components(separatedBy: "---\n")[1]
        #expect(failure.contains("SLIPWAY_RESULT=failed\n"))
        #expect(failure.contains("SLIPWAY_STAGE=build\n"))
        #expect(failure.contains("SLIPWAY_SHA=\(bad)\n"))
        #expect(failure.contains("SLIPWAY_ERROR=the backend build exited with status 4"))
        #expect(receiver.requests.count == 2)
        let second = try JSONSerialization.jsonObject(with: Data((receiver.requests[1]["body"] as? String ?? "").utf8)) as? [String: String]
        #expect(second?["result"] == "failed")
        #expect(second?["stage"] == "build")
        let metrics = f.read(f.stateDir + "/metrics.prom") ?? ""
        #expect(metrics.contains("slipway_on_deploy_hooks_total{kind=\"webhook\",outcome=\"succeeded\"}"))
    }

    @Test func aHangingHookNeverDelaysTheNextDeploy() throws {
        let a = try APITests.RunningAgent(extra: """
        on_deploy:
          - command: sleep 61
            timeout: 20s
          - webhook: http://127.0.0.1:9/unreachable
            timeout: 1s
            retries: 5
        """)
        let v1 = try a.f.commitSource(["index.html": "v1"])
        try a.f.commitManifest("demo.yaml", a.f.manifest(ref: v1))
        try a.start()
        defer {
            a.stop()
            _ = try? Fixture.run("/usr/bin/pkill", ["-KILL", "-f", "sleep 61"], timeout: 5)
        }
        #expect(a.waitFor { a.f.currentFile("frontend/index.html") == "v1" })
        let v2 = try a.f.commitSource(["index.html": "v2"])
        let commit = try a.f.commitManifest("demo.yaml", a.f.manifest(ref: v2))
        let started = Date()
        #expect(try a.notify(after: commit).status == 202)
        #expect(a.waitFor({ a.f.currentFile("frontend/index.html") == "v2" }, seconds: 10))
        #expect(Date().timeIntervalSince(started) < 5)

        // Stopping the agent stops the hook commands still running.
        #expect(try !Fixture.run("/usr/bin/pgrep", ["-f", "sleep 61"], timeout: 5).stdout.isEmpty)
        a.stop()
        #expect(a.waitFor({ (try? Fixture.run("/usr/bin/pgrep", ["-f", "sleep 61"], timeout: 5).stdout.isEmpty) == true }, seconds: 10))
    }
}
