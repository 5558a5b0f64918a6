import Crypto
import Foundation
import Testing

/// The agent's HTTP API and push notifications, on real sockets on loopback.
@Suite(.endToEnd)
struct APITests {
    /// A running agent with push notifications enabled and polling effectively off.
    final class RunningAgent {
        let f: Fixture
        let process = Process()
        let secret = "s3cret-\(UInt64.random(in: 0...UInt64.max))"
        var secretFile: String { f.root + "/notify.secret" }
        var base = ""

        init(manifestsRepo: String? = nil, pollInterval: String = "1h", extra: String = "") throws {
            f = try Fixture(name: "api")
            try f.write(secret + "\n", to: secretFile)
            try f.write("""
            host: web-1
            manifests:
              repo: \(manifestsRepo ?? f.manifestsRepo)
            apps_root: \(f.appsRoot)
            state_dir: \(f.stateDir)
            apps_user: \(Fixture.appsUser)
            \(f.localRoots)
            poll_interval: \(pollInterval)
            listen: 127.0.0.1:0
            notify:
              secret_file: \(secretFile)
            \(extra)
            """, to: f.configPath)
        }

        /// A running agent already serving "v1" of app demo; `ref` is "main" (follow the branch) or nil (the commit).
        static func servingV1(ref: String? = nil, extra: String = "") throws -> (agent: RunningAgent, v1: String) {
            let a = try RunningAgent(extra: extra)
            let v1 = try a.f.commitSource(["index.html": "v1"])
            try a.f.commitManifest("demo.yaml", a.f.manifest(ref: ref ?? v1))
            try a.start()
            guard a.waitFor({ a.f.currentFile("frontend/index.html") == "v1" }) else { throw FixtureError("v1 was not deployed: \(a.log)") }
            return (a, v1)
        }

        /// The agent's open-file limit (soft and hard), as systemd's default unit would give it.
        var openFileLimit: Int?

        func start() throws {
            if let openFileLimit {
                process.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
                process.arguments = ["--nofile=\(openFileLimit):\(openFileLimit)", "--", Fixture.binary, "agent", "--config", f.configPath]
            } else {
                process.executableURL = URL(fileURLWithPath: Fixture.binary)
                process.arguments = ["agent", "--config", f.configPath]
            }
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle(forWritingAtPath: "/dev/null")
            let log = f.root + "/agent.log"
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            process.standardError = FileHandle(forWritingAtPath: log)
            try process.run()
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline {
                if let addr = f.read(f.stateDir + "/http.addr")?.trimmingCharacters(in: .whitespacesAndNewlines), !addr.isEmpty,
                   (try? get("/healthz", base: "http://\(addr)").status) == 200 {
                    base = "http://\(addr)"
                    return
                }
                usleep(50_000)
            }
            throw FixtureError("the agent did not start listening: \(f.read(log) ?? "")")
        }

        var log: String { f.read(f.root + "/agent.log") ?? "" }

        func stop() {
            if process.isRunning {
                kill(process.processIdentifier, SIGTERM)
                let deadline = Date().addingTimeInterval(15)
                while process.isRunning && Date() < deadline { usleep(20_000) }
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            }
        }

        deinit { stop() }

        func get(_ path: String, base: String? = nil) throws -> (status: Int, body: String) {
            try curl(["-sS", "-o", "-", "-w", "\n%{http_code}", (base ?? self.base) + path])
        }

        func curl(_ args: [String]) throws -> (status: Int, body: String) {
            let result = try Fixture.run("/usr/bin/curl", ["--max-time", "10"] + args, timeout: 20)
            var lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
            let code = Int(lines.popLast() ?? "") ?? 0
            return (code, lines.joined(separator: "\n"))
        }

        /// POSTs a notification; `sign` false sends none, `secret` overrides the key, `timestamp` the time.
        func notify(after: String, ref: String = "refs/heads/main", sign: Bool = true, secret: String? = nil,
                    timestamp: Int? = nil, body: String? = nil, replay: (String, String)? = nil) throws -> (status: Int, body: String, headers: (String, String), sent: String) {
            let payload = body ?? "{\"ref\":\"\(ref)\",\"before\":\"\(String(repeating: "0", count: 40))\",\"after\":\"\(after)\",\"pushed_at\":\"\(Date())\"}"
            let ts = String(timestamp ?? Int(Date().timeIntervalSince1970))
            let key = SymmetricKey(data: Array((secret ?? self.secret).utf8))
            let mac = HMAC<SHA256>.authenticationCode(for: Array("\(ts).\(payload)".utf8), using: key)
            let signature = "sha256=" + mac.map { String(format: "%02x", $0) }.joined()
            let headers = replay ?? (ts, signature)
            let bodyFile = f.root + "/body-\(UUID().uuidString)"
            try f.write(payload, to: bodyFile)
            var args = ["-sS", "-o", "-", "-w", "\n%{http_code}", "-X", "POST", "-H", "Content-Type: application/json", "--data-binary", "@\(bodyFile)"]
            if sign { args += ["-H", "X-Slipway-Timestamp: \(headers.0)", "-H", "X-Slipway-Signature: \(headers.1)"] }
            let result = try curl(args + [base + "/v1/notify"])
            return (result.status, result.body, headers, payload)
        }

        func passes() throws -> Int {
            let metrics = try get("/metrics").body
            let line = metrics.split(separator: "\n").first { $0.hasPrefix("slipway_passes_total ") }
            return line.flatMap { Int($0.split(separator: " ")[1]) } ?? 0
        }

        func waitFor(_ condition: () throws -> Bool, seconds: Double = 20) rethrows -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if try condition() { return true }
                usleep(50_000)
            }
            return try condition()
        }
    }

    @Test func healthStatusAndMetricsAreServedOnTCPAndTheUnixSocket() throws {
        let a = try RunningAgent()
        let sha = try a.f.commitSource(["index.html": "v1"])
        try a.f.commitManifest("demo.yaml", a.f.manifest(ref: sha))
        try a.start()
        defer { a.stop() }
        #expect(a.waitFor { a.f.current() != nil })
        #expect(try a.get("/healthz").body == "ok\n")
        // Status is for the operator: on the unix socket, not for strangers on TCP (no api.token_file here).
        let socket = a.f.stateDir + "/agent.sock"
        let overTheSocket = try a.curl(["-sS", "-o", "-", "-w", "\n%{http_code}", "--unix-socket", socket, "http://localhost/v1/status"])
        let status = try JSONSerialization.jsonObject(with: Data(overTheSocket.body.utf8)) as? [String: Any]
        #expect((status?["apps"] as? [[String: Any]])?.first?["app"] as? String == "demo")
        #expect(status?["agentPID"] as? Int == Int(a.process.processIdentifier))
        #expect(try a.get("/v1/status").status == 404)

        // Prometheus text: every sample line is `name{labels} value`, every family typed.
        let metrics = try a.get("/metrics").body
        let samples = metrics.split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.isEmpty }
        #expect(!samples.isEmpty)
        for sample in samples {
            let parts = sample.split(separator: " ")
            #expect(parts.count == 2 && Double(parts[1]) != nil, "bad sample line: \(sample)")
            let name = parts[0].split(separator: "{")[0]
            let family = name.replacingOccurrences(of: "_bucket", with: "").replacingOccurrences(of: "_count", with: "").replacingOccurrences(of: "_sum", with: "")
            #expect(metrics.contains("# TYPE \(family) "), "untyped family \(family)")
        }
        #expect(metrics.contains("slipway_deploys_total{app=\"demo\",result=\"succeeded\"} 1"))
        #expect(metrics.contains("slipway_current_release_info{app=\"demo\",release=\"\(a.f.current()!)\",sha=\"\(sha)\"} 1.0"))

        var info = stat()
        #expect(lstat(socket, &info) == 0 && info.st_mode & 0o777 == 0o660)
        let overSocket = try a.curl(["-sS", "-o", "-", "-w", "\n%{http_code}", "--unix-socket", socket, "http://localhost/healthz"])
        #expect(overSocket.status == 200)
        // The local-only pass trigger is not on TCP.
        #expect(try a.curl(["-sS", "-o", "/dev/null", "-w", "\n%{http_code}", "-X", "POST", a.base + "/v1/pass"]).status == 404)
    }

    @Test func aSignedNotificationTriggersAPassAndForgeriesTriggerNothing() throws {
        let (a, _) = try RunningAgent.servingV1(ref: "main")
        defer { a.stop() }
        #expect(a.waitFor { (try? a.passes()) == 1 })

        let v2 = try a.f.commitSource(["index.html": "v2"])
        // Each refusal is judged in-process (SlipwayTests/AgentAPITests); over the real listener:
        // an unsigned one and another branch's start no pass.
        #expect(try a.notify(after: v2, sign: false).status == 401)
        #expect(try a.notify(after: v2, ref: "refs/heads/other").status == 202)
        usleep(1_000_000)
        #expect(try a.passes() == 1)
        #expect(a.f.currentFile("frontend/index.html") == "v1")
        #expect(!a.log.contains(a.secret))

        // A valid one triggers a pass; the same request replayed is refused.
        let accepted = try a.notify(after: v2)
        #expect(accepted.status == 202)
        #expect(a.waitFor { a.f.currentFile("frontend/index.html") == "v2" })
        let replayed = try a.notify(after: v2, body: accepted.sent, replay: accepted.headers)
        #expect(replayed.status == 401)
        #expect(replayed.body.contains("already received"))

        let metrics = try a.get("/metrics").body
        for outcome in ["unsigned", "ignored", "accepted", "replayed"] {
            #expect(metrics.contains("slipway_notify_requests_total{outcome=\"\(outcome)\"}"), "no count for \(outcome)")
        }
    }

    @Test func rollbackReachesARunningAgentAndReportsItsAnswer() throws {
        let (a, _) = try RunningAgent.servingV1()
        defer { a.stop() }
        let first = try #require(a.f.current())

        let refused = try a.f.slipway(["rollback", "demo"])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("there is no older good release to roll back to"))

        let v2 = try a.f.commitSource(["index.html": "v2"])
        let commit = try a.f.commitManifest("demo.yaml", a.f.manifest(ref: v2))
        #expect(try a.notify(after: commit).status == 202)
        #expect(a.waitFor { a.f.currentFile("frontend/index.html") == "v2" })
        let rolled = try a.f.slipway(["rollback", "demo"])
        #expect(rolled.status == 0, "\(rolled.output)")
        #expect(rolled.stdout.contains("asked the running agent (pid \(a.process.processIdentifier))"))
        #expect(a.f.current() == first)
        #expect(try a.f.appStatus()["condition"] as? String == "pinned")
    }

    @Test func aHalfOpenClientIsDisconnected() throws {
        let a = try RunningAgent()
        try a.f.commitSource(["index.html": "v1"])
        try a.f.commitManifest("demo.yaml", a.f.manifest(ref: "main"))
        try a.start()
        defer { a.stop() }
        // Half a request, then silence: the agent closes the connection when its head has not
        // arrived within 5 s (before the 10 s idle timeout).
        let script = "import socket,sys,time\nh,p=sys.argv[1].rsplit(':',1)\ns=socket.create_connection((h,int(p)))\n"
            + "s.sendall(b'POST /v1/notify HTTP/1.1\\r\\nHost: x\\r\\n')\nt=time.time()\ns.settimeout(30)\n"
            + "d=s.recv(100)\nprint(round(time.time()-t,1), len(d))\n"
        try a.f.write(script, to: a.f.root + "/halfopen.py")
        let result = try Fixture.run("/usr/bin/env", ["python3", a.f.root + "/halfopen.py", String(a.base.dropFirst(7))], timeout: 40)
        let seconds = Double(result.stdout.split(separator: " ").first ?? "") ?? 99
        #expect(seconds >= 4.5 && seconds < 9, "closed after \(result.stdout)")
    }

    /// 2,000 slow connections against an agent held to 1,024 fds (systemd's default soft limit):
    /// the agent never dies, its fd count stays under the limit, the CLI's socket answers at once
    /// during the flood, a deploy still runs, and TCP answers again within 1 s of the flood's end.
    @Test func aFloodOfSlowConnectionsNeverTakesTheAgentDown() throws {
        let a = try RunningAgent()
        a.openFileLimit = 1024
        try a.f.commitSource(["index.html": "v1"])
        try a.f.commitManifest("demo.yaml", a.f.manifest(ref: "main"))
        try a.start()
        defer { a.stop() }
        #expect(a.waitFor { a.f.currentFile("frontend/index.html") == "v1" })
        let pid = a.process.processIdentifier

        // Bounded: 2,000 connections, each sending half a request head, held for 8 s, then closed.
        let script = """
        import socket, sys, time
        host, port = sys.argv[1].rsplit(':', 1)
        held, failed = [], 0
        for i in range(2000):
            try:
                s = socket.create_connection((host, int(port)), timeout=2)
                s.sendall(b'GET /healthz HTTP/1.1\\r\\nHost: x\\r\\n')
                held.append(s)
            except OSError:
                failed += 1
        print('opened', len(held), 'failed', failed, flush=True)
        time.sleep(8)
        for s in held:
            s.close()
        """
        try a.f.write(script, to: a.f.root + "/flood.py")
        let flood = Process()
        flood.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        flood.arguments = [a.f.root + "/flood.py", String(a.base.dropFirst(7))]
        _ = FileManager.default.createFile(atPath: a.f.root + "/flood.out", contents: nil)
        flood.standardOutput = FileHandle(forWritingAtPath: a.f.root + "/flood.out")
        try flood.run()
        defer { if flood.isRunning { kill(flood.processIdentifier, SIGKILL) } }
        usleep(2_000_000)

        // During the flood: the socket answers within 1 s, and a deploy runs to the end.
        let socket = a.f.stateDir + "/agent.sock"
        var slowest = 0.0
        var maxFDs = 0
        for _ in 0..<4 {
            let started = Date()
            let status = try a.curl(["-sS", "-o", "/dev/null", "-w", "\n%{http_code}", "--unix-socket", socket, "http://localhost/v1/status"])
            slowest = max(slowest, Date().timeIntervalSince(started))
            #expect(status.status == 200)
            maxFDs = max(maxFDs, (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? 0)
            usleep(200_000)
        }
        #expect(slowest < 1, "slipway status over the socket took \(slowest) s during the flood")
        try a.f.commitSource(["index.html": "v2"])
        let deploy = try a.f.slipway(["deploy", "demo", "--wait"], timeout: 60)
        #expect(deploy.status == 0, "\(deploy.output)")
        #expect(a.f.currentFile("frontend/index.html") == "v2")
        #expect(maxFDs > 0 && maxFDs < 400, "the agent held \(maxFDs) fds during the flood")

        flood.waitUntilExit()
        let ended = Date()
        // The flood really held connections: the agent accepted them (then closed those over its cap).
        let opened = Int(a.f.read(a.f.root + "/flood.out")?.split(separator: " ").dropFirst().first ?? "") ?? 0
        #expect(opened >= 128, "the flood opened \(opened) connections: \(a.f.read(a.f.root + "/flood.out") ?? "")")
        // Asked on a plain socket, as often as every 50 ms: a curl process's start would be counted too.
        #expect(a.waitFor({ a.f.healthzAnswers() }, seconds: 5))
        let back = Date().timeIntervalSince(ended)
        print("flood: /healthz over TCP answered \(Int(back * 1000)) ms after the flood ended")
        #expect(back < 1, "/healthz answered \(back) s after the flood")
        #expect(a.process.isRunning, "the agent died: \(a.log)")
        #expect(!a.log.contains("Too many open files"))
    }

    /// Over TCP, status needs api.token_file's bearer token; nothing any TCP endpoint serves
    /// holds a secret of the app (an env_file value, a build's output) or the token itself.
    @Test func statusOverTCPNeedsTheTokenAndNoTCPResponseCarriesASecret() throws {
        let token = "tok-\(UInt64.random(in: 0...UInt64.max))-\(UInt64.random(in: 0...UInt64.max))"
        let buildSecret = "build-output-secret-\(UInt64.random(in: 0...UInt64.max))"
        let a = try RunningAgent(extra: "api:\n  token_file: TOKEN_FILE\n")
        let tokenFile = a.f.root + "/api.token"
        try a.f.write(token + "\n", to: tokenFile)
        let config = try #require(a.f.read(a.f.configPath))
        try a.f.write(config.replacingOccurrences(of: "TOKEN_FILE", with: tokenFile), to: a.f.configPath)
        try a.f.commitSource(["index.html": "v1"])
        // A failing build whose output holds the secret: it lands in the build log and the status message.
        try a.f.commitManifest("demo.yaml", a.f.manifest(ref: "main", backendBuild: "echo \(buildSecret); exit 3"))
        try a.start()
        defer { a.stop() }
        #expect(a.waitFor { (try? a.f.appStatus()["condition"] as? String) == "failed" })

        #expect(try a.get("/v1/status").status == 401)
        let wrong = try a.curl(["-sS", "-o", "-", "-w", "\n%{http_code}", "-H", "Authorization: Bearer nope", a.base + "/v1/status"])
        #expect(wrong.status == 401)
        let allowed = try a.curl(["-sS", "-o", "-", "-w", "\n%{http_code}", "-H", "Authorization: Bearer \(token)", a.base + "/v1/status"])
        #expect(allowed.status == 200)
        #expect(allowed.body.contains("\"app\" : \"demo\""))

        var served = ""
        for path in ["/healthz", "/metrics", "/v1/status", "/v1/events", "/v1/pass", "/nope"] {
            served += try a.get(path).body
        }
        served += try a.notify(after: String(repeating: "a", count: 40), sign: false).body
        #expect(!served.contains(buildSecret))
        #expect(!served.contains(token))
        #expect(!a.log.contains(token))
    }

    @Test func aBurstOfFiftyNotificationsCoalescesIntoAtMostTwoPasses() throws {
        let a = try RunningAgent()
        try a.f.commitSource(["index.html": "v1"])
        try a.f.commitManifest("demo.yaml", a.f.manifest(ref: "main"))
        try a.start()
        defer { a.stop() }
        #expect(a.waitFor { a.f.current() != nil && (try? a.passes()) == 1 })
        let source = try a.f.commitSource(["index.html": "v2"])
        // Notifications announce the manifests branch's new commit, as the hook sends them.
        let v2 = try a.f.commitManifest("demo.yaml", a.f.manifest(ref: source))
        // One curl, 50 transfers in parallel (a config file with one block per request).
        let config = (0..<50).map { i -> String in
            let body = "{\"ref\":\"refs/heads/main\",\"before\":\"\(String(repeating: "0", count: 40))\",\"after\":\"\(v2)\",\"pushed_at\":\"burst-\(i)\"}"
            let ts = Int(Date().timeIntervalSince1970)
            let mac = HMAC<SHA256>.authenticationCode(for: Array("\(ts).\(body)".utf8), using: SymmetricKey(data: Array(a.secret.utf8)))
            let sig = "sha256=" + mac.map { String(format: "%02x", $0) }.joined()
            let escaped = body.replacingOccurrences(of: "\"", with: "\\\"")
            return """
            url = "\(a.base)/v1/notify"
            request = "POST"
            header = "X-Slipway-Timestamp: \(ts)"
            header = "X-Slipway-Signature: \(sig)"
            data-binary = "\(escaped)"
            output = "/dev/null"
            """
        }.joined(separator: "\nnext\n")
        try a.f.write(config + "\n", to: a.f.root + "/burst.curl")
        let burst = try Fixture.run("/usr/bin/curl", ["-s", "--parallel", "--parallel-max", "50", "--max-time", "10", "-K", a.f.root + "/burst.curl"], timeout: 60)
        #expect(burst.status == 0, "\(burst.output)")
        #expect(a.waitFor { a.f.currentFile("frontend/index.html") == "v2" })
        usleep(1_000_000)
        let passes = try a.passes()
        #expect(passes >= 2 && passes <= 3, "50 notifications caused \(passes - 1) passes")
        #expect(try a.get("/metrics").body.contains("slipway_notify_requests_total{outcome=\"accepted\"} 50"))
    }

    @Test func aDeployInProgressIsSupersededBeforeItsSwitchWhenANewerCommitIsPushed() throws {
        let (a, _) = try RunningAgent.servingV1()
        defer { a.stop() }

        let marker = a.f.scratch + "/slow-build-started"
        let v2 = try a.f.commitSource(["index.html": "v2"])
        let slow = try a.f.commitManifest("demo.yaml", a.f.manifest(ref: v2, backendBuild: "touch \(marker); sleep 3"))
        #expect(try a.notify(after: slow).status == 202)
        #expect(a.waitFor { FileManager.default.fileExists(atPath: marker) })

        let v3 = try a.f.commitSource(["index.html": "v3"])
        let newer = try a.f.commitManifest("demo.yaml", a.f.manifest(ref: v3))
        #expect(try a.notify(after: newer).status == 202)
        #expect(a.waitFor { a.f.currentFile("frontend/index.html") == "v3" })
        // v2 was built but never published, never current.
        #expect(!a.f.releases().contains { $0.hasSuffix(String(v2.prefix(7))) })
        #expect(a.log.contains("deploy superseded by manifests commit \(newer.prefix(12))"))
        #expect(a.waitFor { (try? a.f.appStatus()["condition"] as? String) == "converged" })
    }

    @Test func deployWaitFollowsThePassStageByStageAndFailsWithTheDeploy() throws {
        let (a, _) = try RunningAgent.servingV1()
        defer { a.stop() }

        let v2 = try a.f.commitSource(["index.html": "v2"])
        try a.f.commitManifest("demo.yaml", a.f.manifest(ref: v2, backendBuild: "echo compiling-v2; sleep 1"))
        let ok = try a.f.slipway(["deploy", "demo", "--wait", "--logs"], timeout: 60)
        #expect(ok.status == 0, "\(ok.output)")
        for expected in ["pass started", "demo           fetch    done", "demo           build    done", "│ compiling-v2",
                         "demo           switch   done", "demo: deploy succeeded", "pass finished: converged"] {
            #expect(ok.stdout.contains(expected), "missing '\(expected)' in:\n\(ok.stdout)")
        }
        #expect(a.f.currentFile("frontend/index.html") == "v2")

        let v3 = try a.f.commitSource(["index.html": "v3"])
        try a.f.commitManifest("demo.yaml", a.f.manifest(ref: v3, backendBuild: "exit 9"))
        let failed = try a.f.slipway(["deploy", "demo", "--wait"], timeout: 60)
        #expect(failed.status == 1)
        #expect(failed.stdout.contains("demo           build    failed"))
        #expect(failed.stdout.contains("exited with status 9"))
        #expect(a.f.currentFile("frontend/index.html") == "v2")

        // status asks the running agent over its socket.
        #expect(try a.f.slipway(["status"]).stdout.contains("agent running (pid \(a.process.processIdentifier))"))
    }

    @Test(arguments: [false, true])
    func aGitPushIntoABareRepoWithTheHookNotifiesTheRunningAgent(useCurl: Bool) throws {
        let a = try RunningAgent()
        // The manifests live in a bare repo with the hook installed; a developer clone pushes.
        let bare = a.f.root + "/manifests.git"
        try a.f.git(["init", "-q", "--bare", "-b", "main", bare])
        let hooks = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("hooks/post-receive").path
        try FileManager.default.copyItem(atPath: hooks, toPath: bare + "/hooks/post-receive")
        try a.f.write(a.f.read(a.f.configPath)!.replacingOccurrences(of: "repo: \(a.f.manifestsRepo)", with: "repo: \(bare)"), to: a.f.configPath)
        try a.f.commitSource(["index.html": "v1"])
        try a.f.commitManifest("demo.yaml", a.f.manifest(ref: "main"))
        try a.f.git(["push", "-q", bare, "main"], in: a.f.manifestsRepo)
        try a.start()
        defer { a.stop() }
        #expect(a.waitFor { a.f.currentFile("frontend/index.html") == "v1" })
        try a.f.git(["config", "--add", "slipway.agents", a.base], in: bare)
        try a.f.git(["config", "--add", "slipway.agents", "http://127.0.0.1:9"], in: bare)  // an agent that is down
        try a.f.git(["config", "slipway.secretFile", a.secretFile], in: bare)

        let v2 = try a.f.commitSource(["index.html": "v2"])
        try a.f.commitManifest("demo.yaml", a.f.manifest(ref: v2))
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] = (Fixture.binary as NSString).deletingLastPathComponent + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
        if useCurl { environment["SLIPWAY_HOOK_CURL"] = "1" }
        let started = Date()
        let push = try Fixture.run("/usr/bin/git", ["-C", a.f.manifestsRepo, "push", bare, "main"], timeout: 30, environment: environment)
        #expect(push.status == 0, "\(push.output)")
        #expect(Date().timeIntervalSince(started) < 5)
        // The pusher is told which agent missed it; the push itself succeeds.
        #expect(push.stderr.contains("127.0.0.1:9"))
        #expect(a.waitFor({ a.f.currentFile("frontend/index.html") == "v2" }, seconds: 10))
        #expect(try a.get("/metrics").body.contains("slipway_notify_requests_total{outcome=\"accepted\"} 1"))
    }
}
