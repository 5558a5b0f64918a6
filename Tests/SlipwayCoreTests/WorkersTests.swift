import Testing
@testable import SlipwayCore

/// The backend's worker fields, and the pure pieces of the supervisor: env files, restart
/// backoff, worker generations, sizes, commands, listen addresses.
@Suite struct WorkersTests {
    func decode(_ backend: String) -> Result<Manifest, Diagnostics> {
        ManifestDecoder.decode("app: demo\nsource: {repo: /r.git, ref: main}\nbackend:\n" + backend, file: "m.yaml")
    }

    func problems(_ backend: String) -> [String] {
        switch decode(backend) {
        case .success: return []
        case .failure(let diagnostics): return diagnostics.items.map(\.description)
        }
    }

    @Test func onlyAWorkerWhoseReadinessIsASignalOrACheckStartsAtLowPriority() throws {
        #expect(Workers(command: "node app.js", ready: .init(notify: true)).startsAtLowPriority)
        #expect(Workers(command: "node app.js", health: Workers.Health(path: "/health")).startsAtLowPriority)
        // Judged ready by staying up 1 s: it needs the CPU to fail within that second.
        #expect(!Workers(command: "node app.js").startsAtLowPriority)
    }

    @Test func everyWorkerFieldOfTheIssueDecodes() throws {
        let manifest = try decode("""
          command: node src/server.js
          instances: 4
          listen: 127.0.0.1:3000
          user: www-data
          env_file: /etc/slipway/env/platform.env
          ready:
            notify: true
            timeout: 5s
          health:
            path: /api/health
            timeout: 2s
          stop:
            signal: SIGINT
            timeout: 15s
          max_memory: 512M
          restart:
            backoff: 100ms
            min_uptime: 10s
        """).get()
        let backend = try #require(manifest.backend)
        #expect(backend.user == "www-data")
        #expect(backend.envFile == "/etc/slipway/env/platform.env")
        let workers = try #require(backend.workers)
        #expect(workers.command == "node src/server.js")
        #expect(workers.instances == .count(4))
        #expect(workers.listen == .tcp(host: "127.0.0.1", port: 3000))
        #expect(workers.ready == Workers.Ready(notify: true, timeout: .seconds(5)))
        #expect(workers.ready.lowPriorityPatience == .milliseconds(2_500))
        #expect(Workers.Ready().timeout == .seconds(30) && Workers.Ready().lowPriorityPatience == .seconds(5))
        #expect(workers.health == Workers.Health(path: "/api/health", timeout: .seconds(2)))
        #expect(workers.stop == Workers.Stop(signal: .int, timeout: .seconds(15)))
        #expect(workers.maxMemory == 512 << 20)
        #expect(workers.restart == Workers.Restart(backoff: .milliseconds(100), maxBackoff: .seconds(30), minUptime: .seconds(10)))
    }

    @Test func defaultsAreOneWorkerSIGTERMAndNoSocket() throws {
        let workers = try #require(try decode("  command: ./serve\n").get().backend?.workers)
        #expect(workers == Workers(command: "./serve"))
        #expect(workers.instances == .count(1) && workers.listen == nil && workers.stop.signal == .term)
        #expect(try decode("  command: ./serve\n  instances: max\n").get().backend?.workers?.instances == .max)
        #expect(Workers.Instances.max.resolved(cpus: 8) == 8 && Workers.Instances.max.resolved(cpus: 0) == 1)
    }

    @Test func badWorkerFieldsEachGetTheirPlaceAndAHint() {
        #expect(problems("  command: node a.js && node b.js\n") == [
            "m.yaml:4:12: backend.command must be one program with its arguments, but it contains '&&' — Slipway execs the command so signals and LISTEN_PID reach the program; put a sequence or pipeline in a script that ends with 'exec'",
        ])
        #expect(problems("  command: node a.js\n  instances: 0\n") == ["m.yaml:5:14: backend.instances must be between 1 and 256, not 0"])
        #expect(problems("  command: x\n  listen: 3000\n").first?.contains("backend.listen '3000' is not host:port") == true)
        #expect(problems("  command: x\n  listen: unix:/run/x.sock\n").first?.contains("must name a socket inside the app's directory") == true)
        #expect(problems("  command: x\n  user: root\n").first?.contains("backend.user must not be root") == true)
        #expect(problems("  command: x\n  user: Bad User\n").first?.contains("not a valid account name") == true)
        #expect(problems("  command: x\n  env_file: env/app.env\n").first?.contains("backend.env_file must be an absolute path") == true)
        #expect(problems("  command: x\n  stop: {signal: SIGSTOP}\n").first?.contains("must be one of SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, not 'SIGSTOP'") == true)
        #expect(problems("  command: x\n  max_memory: lots\n").first?.contains("backend.max_memory must be a size of at least 1M") == true)
        #expect(problems("  command: x\n  health: {path: health}\n").first?.contains("must be a URL path starting with '/'") == true)
        #expect(problems("  command: x\n  health: {path: /h}\n").first?.contains("checked through backend.listen, which is not set") == true)
        #expect(problems("  command: x\n  restart: {backoff: 2s, max_backoff: 1s}\n").first?.contains("max_backoff is shorter") == true)
        #expect(problems("  command: x\n  ready: {notfy: true}\n").first?.contains("did you mean 'notify'?") == true)
        #expect(problems("  instances: 2\n") == [
            "m.yaml:4:14: backend.instances has no effect without backend.command — add the command that starts a worker, like 'command: node src/server.js'",
        ])
    }

    @Test func minReadyIsCheckedEverySecondAndAtItsEnd() {
        func checks(_ minReady: Duration) -> [Duration] { Workers.Ready(minReady: minReady).minReadyChecks }
        #expect(checks(.zero) == [])
        #expect(checks(.milliseconds(500)) == [.milliseconds(500)])
        #expect(checks(.seconds(1)) == [.seconds(1)])
        #expect(checks(.seconds(2)) == [.seconds(1), .seconds(2)])
        #expect(checks(.milliseconds(2_500)) == [.seconds(1), .seconds(2), .milliseconds(2_500)])
        #expect(checks(.seconds(60)).count == 60)
    }

    @Test func minReadyIsADurationOfAtMostAMinuteAndNoneByDefault() throws {
        #expect(Workers.Ready().minReady == .zero)
        let workers = try #require(try decode("  command: x\n  ready: {notify: true, min_ready: 1500ms}\n").get().backend?.workers)
        #expect(workers.ready == Workers.Ready(notify: true, minReady: .milliseconds(1_500)))
        #expect(try decode("  command: x\n  ready: {min_ready: 0s}\n").get().backend?.workers?.ready.minReady == .zero)
        #expect(problems("  command: x\n  ready: {min_ready: 2m}\n") == [
            "m.yaml:5:22: backend.ready.min_ready must be at most 1m, not 2m — a few seconds: each slot of a rollout waits this long, with two workers running",
        ])
        #expect(problems("  command: x\n  ready: {min_ready: soon}\n").first?.contains("backend.ready.min_ready must be a duration, not 'soon'") == true)
        #expect(problems("  command: x\n  ready: {min_ready: 2}\n").first?.contains("must be a duration") == true)
    }

    @Test func stopSignalsAreNamedWithOrWithoutSIG() throws {
        #expect(try decode("  command: x\n  stop: {signal: int}\n").get().backend?.workers?.stop.signal == .int)
        #expect(try decode("  command: x\n  stop: {signal: TERM}\n").get().backend?.workers?.stop.signal == .term)
        #expect(Workers.StopSignal.int.number == 2 && Workers.StopSignal.term.number == 15)
    }

    @Test func workerFieldsStayOutOfTheReleaseFingerprint() throws {
        let plain = try decode("  command: node a.js\n").get()
        let more = try decode("  command: node b.js\n  instances: 3\n  listen: 127.0.0.1:9000\n  user: app\n").get()
        #expect(ReleaseSpec(manifest: plain, sourceSHA: "abc").fingerprint == ReleaseSpec(manifest: more, sourceSHA: "abc").fingerprint)
    }

    @Test func compoundCommandsAreFoundOutsideQuotesOnly() {
        #expect(WorkerCommand.compoundOperator(in: "node server.js --port 3000") == nil)
        #expect(WorkerCommand.compoundOperator(in: "node -e 'a; b && c | d'") == nil)
        #expect(WorkerCommand.compoundOperator(in: "echo \"x;y\" arg\\;more") == nil)
        #expect(WorkerCommand.compoundOperator(in: "a; b") == "';'")
        #expect(WorkerCommand.compoundOperator(in: "a | b") == "'|'")
        #expect(WorkerCommand.compoundOperator(in: "a || b") == "'||'")
        #expect(WorkerCommand.compoundOperator(in: "a &") == "'&'")
        #expect(WorkerCommand.compoundOperator(in: "a\nb") == "a newline")
        #expect(WorkerCommand.shellLine("node s.js") == "LISTEN_PID=$$; export LISTEN_PID; exec node s.js")
        #expect(WorkerCommand.shellLine("  exec gunicorn app:app") == "LISTEN_PID=$$; export LISTEN_PID; exec gunicorn app:app")
    }

    @Test func listenAddressesParseAndPrint() throws {
        #expect(try WorkerListen.parse("127.0.0.1:3000").get() == .tcp(host: "127.0.0.1", port: 3000))
        #expect(try WorkerListen.parse("[::1]:80").get().description == "[::1]:80")
        #expect(try WorkerListen.parse("localhost:8080").get() == .tcp(host: "localhost", port: 8080))
        #expect(try WorkerListen.parse("unix:run/web.sock").get() == .unix(RelativePath("run/web.sock")!))
        for bad in ["3000", ":3000", "host:0", "host:70000", "a b:80", "unix:../x.sock", "unix:/abs.sock", "unix:"] {
            #expect(throws: WorkerListen.Problem.self, "\(bad)") { try WorkerListen.parse(bad).get() }
        }
    }

    @Test func sizesAreBinaryMultiples() {
        #expect(ByteSize.parse("512M") == 512 << 20)
        #expect(ByteSize.parse("1G") == 1 << 30)
        #expect(ByteSize.parse("64k") == 64 << 10)
        #expect(ByteSize.parse("2MiB") == 2 << 20)
        #expect(ByteSize.parse("3MB") == 3 << 20)
        #expect(ByteSize.parse("1048576") == 1 << 20)
        for bad in ["", "M", "12T", "1.5G", "-1M", "99999999999999999999G"] { #expect(ByteSize.parse(bad) == nil, "\(bad)") }
        #expect(ByteSize.format(54_900_000) == "52.4M")
        #expect(ByteSize.format(1 << 30) == "1G")
        #expect(ByteSize.format(512) == "512B")
    }

    @Test func envFilesReadLikeSystemdEnvironmentFiles() throws {
        let values = try EnvFile.parse("""
        # secrets for platform
        DATABASE_URL=postgres://app@db/platform
        export API_KEY = "k\\"ey\\n2"
        QUOTED='single $NOT_EXPANDED'

        EMPTY=
        DATABASE_URL=overridden later
        """).get()
        #expect(values == [
            .init(name: "API_KEY", value: "k\"ey\n2"), .init(name: "DATABASE_URL", value: "overridden later"),
            .init(name: "EMPTY", value: ""), .init(name: "QUOTED", value: "single $NOT_EXPANDED"),
        ])
        #expect(throws: EnvFile.Problem(line: 2, message: "expected NAME=value")) { try EnvFile.parse("A=1\njust words\n").get() }
        #expect(throws: EnvFile.Problem(line: 1, message: "the name before '=' is not a valid variable name (letters, digits and _, not starting with a digit)")) { try EnvFile.parse("1A=x").get() }
        // A secret pasted on a line of its own is never repeated in the error.
        guard case .failure(let problem) = EnvFile.parse("https://hooks.example/?token=sk_live_51Habc=\n") else { Issue.record("accepted"); return }
        #expect(!problem.description.contains("sk_live") && !problem.description.contains("token"))
        #expect(throws: EnvFile.Problem(line: 1, message: "'LISTEN_FDS' is set by Slipway itself")) { try EnvFile.parse("LISTEN_FDS=3").get() }
    }

    @Test func restartsBackOffExponentiallyUpToTheCapAndResetAfterMinUptime() {
        var backoff = RestartBackoff(policy: Workers.Restart(backoff: .milliseconds(100), maxBackoff: .seconds(1), minUptime: .seconds(10)))
        let delays = (0..<6).map { _ in backoff.crashed(after: .milliseconds(50)) }
        #expect(delays == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .seconds(1), .seconds(1)])
        #expect(backoff.isCrashLooping && backoff.crashesInARow == 6)
        // A worker that ran for min_uptime before crashing starts the count again.
        #expect(backoff.crashed(after: .seconds(10)) == .milliseconds(100))
        #expect(!backoff.isCrashLooping)
        backoff.stayedUp()
        #expect(backoff.crashesInARow == 0)
        // Thousands of crashes never overflow the delay.
        for _ in 0..<10_000 { _ = backoff.crashed(after: .zero) }
        #expect(backoff.crashed(after: .zero) == .seconds(1))
    }

    @Test func aWorkerGenerationChangesWithReleaseCommandUserListenAndEveryEnvValue() {
        let release = ReleaseID("20261125T170000Z-abcdef1")!
        let base = WorkerGeneration(release: release, command: "node s.js", user: "app", listen: .tcp(host: "127.0.0.1", port: 3000),
                                    environment: [.init(name: "A", value: "1")])
        var ids: Set<String> = [base.id]
        var changed = base
        changed.release = ReleaseID("20261125T170001Z-abcdef1")!
        ids.insert(changed.id)
        changed = base; changed.command = "node t.js"; ids.insert(changed.id)
        changed = base; changed.user = "other"; ids.insert(changed.id)
        changed = base; changed.listen = .tcp(host: "127.0.0.1", port: 3001); ids.insert(changed.id)
        changed = base; changed.environment = [.init(name: "A", value: "2")]; ids.insert(changed.id)
        changed = base; changed.environment = [.init(name: "A", value: "1"), .init(name: "B", value: "")]; ids.insert(changed.id)
        #expect(ids.count == 7)
        #expect(base.id == WorkerGeneration(release: release, command: "node s.js", user: "app", listen: .tcp(host: "127.0.0.1", port: 3000),
                                            environment: [.init(name: "A", value: "1")]).id)
        #expect(base.id.count == 16 && !base.id.contains("1\n"))
        #expect(WorkerGeneration.merge([.init(name: "A", value: "file")], over: [.init(name: "A", value: "manifest"), .init(name: "B", value: "b")])
            == [.init(name: "A", value: "file"), .init(name: "B", value: "b")])
    }

    /// An id is shown to anyone who reads status; without the host's key it says nothing of the env.
    @Test func aGenerationIdIsKeyedByTheHostsSecret() {
        let release = ReleaseID("20261125T170000Z-abcdef1")!
        func id(secret: String, key: [UInt8]) -> String {
            WorkerGeneration(release: release, command: "node s.js", user: "app", listen: nil,
                             environment: [.init(name: "API_KEY", value: secret)], key: key).id
        }
        let hostKey = Array("a host's 32-byte random key......".utf8)
        let shown = id(secret: "hunter2", key: hostKey)
        #expect(shown == id(secret: "hunter2", key: hostKey))
        // The attack of the report: hash each guess without the key, compare with the id shown.
        let guesses = ["password", "secret", "hunter2", "letmein", "changeme"]
        #expect(!guesses.map { id(secret: $0, key: []) }.contains(shown))
        #expect(shown != id(secret: "hunter2", key: Array("another host's key..............".utf8)))
    }

    @Test func theAgentConfigNamesTheAppsUserAndTheEnvDir() throws {
        let config = try AgentConfig.decode("manifests: {repo: /m.git}\napps_user: www-data\nenv_dir: /srv/env\n", file: "a.yaml", hostname: "h").get()
        #expect(config.appsUser == "www-data" && config.envDir == "/srv/env")
        let defaults = try AgentConfig.decode("manifests: {repo: /m.git}\n", file: "a.yaml", hostname: "h").get()
        #expect(defaults.appsUser == nil && defaults.envDir == "/etc/slipway/env")
        guard case .failure(let problems) = AgentConfig.decode("manifests: {repo: /m.git}\napps_user: root\n", file: "a.yaml", hostname: "h") else {
            Issue.record("root accepted as apps_user")
            return
        }
        #expect(problems.items.first?.description.contains("apps_user must be an unprivileged account name") == true)
    }
}
