import Foundation
import Testing

/// Hosts made of network namespaces: a switch namespace holding a bridge, and one namespace per
/// host joined to it by a veth pair, on a private subnet that exists only inside them. Every
/// namespace is removed (with its links) when the network goes away.
final class TestNetwork {
    let tag: String
    let subnet: String
    var bridge: String { "\(tag)-br" }
    private(set) var hosts: [String: (namespace: String, address: String, index: Int)] = [:]

    init() throws {
        tag = "sw14" + String(format: "%04x", UInt16.random(in: 0...UInt16.max))
        subnet = "10.214.\(Int.random(in: 0...255))"
        try Self.ip(["netns", "add", bridge])
        try Self.ip(["-n", bridge, "link", "add", "br0", "type", "bridge"])
        try Self.ip(["-n", bridge, "link", "set", "br0", "up"])
    }

    /// Adds a host `name` at `.<10 + index>` on the subnet; returns its address.
    @discardableResult
    func addHost(_ name: String) throws -> String {
        let index = hosts.count
        let namespace = "\(tag)-\(name)"
        let address = "\(subnet).\(10 + index)"
        try Self.ip(["netns", "add", namespace])
        try Self.ip(["-n", bridge, "link", "add", "p\(index)", "type", "veth", "peer", "name", "eth0", "netns", namespace])
        try Self.ip(["-n", bridge, "link", "set", "p\(index)", "master", "br0", "up"])
        try Self.ip(["-n", namespace, "addr", "add", "\(address)/24", "dev", "eth0"])
        try Self.ip(["-n", namespace, "link", "set", "eth0", "up"])
        try Self.ip(["-n", namespace, "link", "set", "lo", "up"])
        hosts[name] = (namespace, address, index)
        return address
    }

    func namespace(_ host: String) -> String { hosts[host]!.namespace }
    func address(_ host: String) -> String { hosts[host]!.address }

    /// Takes a host's link down (or up): its side of the bridge.
    func setLink(_ host: String, up: Bool) throws {
        try Self.ip(["-n", bridge, "link", "set", "p\(hosts[host]!.index)", up ? "up" : "down"])
    }

    /// Runs a program inside a host's namespace.
    func run(on host: String, _ executable: String, _ arguments: [String], timeout: Double = 120) throws -> Fixture.RunResult {
        try Fixture.run("/usr/sbin/ip", ["netns", "exec", namespace(host), executable] + arguments, timeout: timeout)
    }

    static func ip(_ arguments: [String]) throws {
        try TestSSHServer.must("/usr/sbin/ip", arguments)
    }

    deinit {
        for (_, host) in hosts { _ = try? Fixture.run("/usr/sbin/ip", ["netns", "del", host.namespace], timeout: 10) }
        _ = try? Fixture.run("/usr/sbin/ip", ["netns", "del", bridge], timeout: 10)
    }
}

/// The fleet: a git server host (sshd, bare repos) and three agent hosts web-1…3 reaching it over
/// SSH across the namespaces' network, each with its own apps_root, state_dir and agent.yaml.
@Suite(.serialized, .endToEnd)
struct FleetTests {
    @Test func threeHostsDeployOverSSHRespectHostsAndCatchUpAfterALinkOutage() throws {
        let f = try Fixture(name: "fleet")
        let network = try TestNetwork()
        let gitAddress = try network.addHost("git")
        // bench/fleet sets SLIPWAY_FLEET_HOSTS to measure more hosts; the test runs three.
        let count = max(3, Int(ProcessInfo.processInfo.environment["SLIPWAY_FLEET_HOSTS"] ?? "") ?? 3)
        let webs = (1...count).map { "web-\($0)" }
        for web in webs { try network.addHost(web) }
        let server = try TestSSHServer(root: f.root, address: gitAddress, port: 22, namespace: network.namespace("git"))
        defer { server.stop() }
        try TestSSHServer.makeKey(f.identity)
        try server.authorize(f.identity + ".pub")
        try server.start()
        // The host key as web-1 sees it, across the network (the operator checks it once for the fleet).
        let scan = try network.run(on: "web-1", "/usr/bin/ssh-keyscan", ["-t", "ed25519", gitAddress], timeout: 20)
        #expect(scan.stdout.hasPrefix(gitAddress + " "), "\(scan.output)")
        try f.write(scan.stdout, to: f.knownHosts)

        let repo = "ssh://\(server.account)@\(gitAddress)\(f.bareSource)"
        try f.commitSource(["index.html": "v1"])
        try f.commitManifest("all.yaml", f.plainManifest(app: "everywhere", repo: repo))
        try f.commitManifest("two.yaml", f.plainManifest(app: "two", repo: repo) + "hosts: [web-1, web-2]\n")
        try f.publish()
        for web in webs {
            try f.write("""
            host: \(web)
            manifests: {repo: 'ssh://\(server.account)@\(gitAddress)\(f.bareManifests)', branch: main, path: manifests}
            apps_root: \(f.root)/hosts/\(web)/apps
            state_dir: \(f.root)/hosts/\(web)/state
            poll_interval: 1h
            listen: off
            apps_user: \(Fixture.appsUser)
            \(f.sshGitSection())
            """, to: "\(f.root)/hosts/\(web)/agent.yaml")
        }
        func pass(_ web: String) throws -> Fixture.RunResult {
            try network.run(on: web, Fixture.binary, ["agent", "--once", "--config", "\(f.root)/hosts/\(web)/agent.yaml"])
        }
        func served(_ web: String, _ app: String) -> String? {
            f.read("\(f.root)/hosts/\(web)/apps/\(app)/current/backend/index.html")
        }

        for web in webs {
            let result = try pass(web)
            #expect(result.status == 0, "\(web): \(result.output)")
            #expect(served(web, "everywhere") == "v1", "\(web)")
        }
        #expect(served("web-1", "two") == "v1" && served("web-2", "two") == "v1")
        #expect(webs.dropFirst(2).allSatisfy { served($0, "two") == nil })
        // Each host: one connection for the manifests, one for the source both apps share.
        #expect(server.acceptedLogins == 2 * count)
        let pollOnce = server.acceptedLogins
        for web in webs { _ = try pass(web) }
        print("fleet: a polling pass with nothing new costs the git server \(server.acceptedLogins - pollOnce) SSH connections for \(count) hosts")

        // web-3's link is down during a push: the others deploy, it keeps v1 and says why.
        try network.setLink("web-3", up: false)
        try f.commitSource(["index.html": "v2"])
        try f.publish()
        for web in webs where web != "web-3" {
            #expect(try pass(web).status == 0)
            #expect(served(web, "everywhere") == "v2")
        }
        let cut = try pass("web-3")
        #expect(cut.status != 0)
        #expect(cut.output.contains("fetching from ssh://\(server.account)@\(gitAddress)"), "\(cut.output)")
        #expect(served("web-3", "everywhere") == "v1")

        // The link comes back: the next poll catches up.
        try network.setLink("web-3", up: true)
        let back = try pass("web-3")
        #expect(back.status == 0, "\(back.output)")
        #expect(served("web-3", "everywhere") == "v2")

        // Running agents (polling at 1 h) and the post-receive hook on the git server: a push to
        // the manifests deploys on every host within seconds, through the signed notification.
        let secret = f.root + "/notify.secret"
        try f.write(UUID().uuidString + "\n", to: secret)
        var agents: [String: Int32] = [:]
        func stopAgent(_ web: String) {
            guard let pid = agents.removeValue(forKey: web) else { return }
            kill(pid, SIGTERM)
            let deadline = Date().addingTimeInterval(20)
            while WorkerApp.isRunning(pid) && Date() < deadline { usleep(20_000) }
            if WorkerApp.isRunning(pid) { kill(pid, SIGKILL) }
        }
        defer { for web in agents.keys { stopAgent(web) } }
        func agentLog(_ web: String) -> String { f.read("\(f.root)/hosts/\(web)/agent.log") ?? "" }
        func startAgent(_ web: String) throws {
            let config = "\(f.root)/hosts/\(web)/agent.yaml"
            let pidFile = "\(f.root)/hosts/\(web)/agent.pid"
            unlink(pidFile)
            // Detached, not a Foundation Process child (see TestSSHServer.start).
            try TestHTTPSGitServer.spawnAndWait(["/bin/sh", "-c", "setsid -f /bin/sh -c 'echo $$ > \(pidFile); exec /usr/sbin/ip netns exec \(network.namespace(web)) \(Fixture.binary) agent --config \(config)' >>\(f.root)/hosts/\(web)/agent.log 2>&1 </dev/null"])
            let pid: () -> Int32? = { Int32(f.read(pidFile)?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") }
            #expect(f.waitUntil(seconds: 10) { pid() != nil })
            guard let started = pid() else { throw FixtureError("\(web)'s agent wrote no pid") }
            agents[web] = started
        }
        func waitUp(_ web: String) {
            #expect(f.waitUntil(seconds: 60) {
                (try? network.run(on: web, "/usr/bin/curl", ["-sf", "--max-time", "2", "http://\(network.address(web)):7070/healthz"], timeout: 5).status) == 0
            }, "\(web)'s agent did not come up: \(agentLog(web))")
        }
        for web in webs {
            let config = "\(f.root)/hosts/\(web)/agent.yaml"
            let text = try #require(f.read(config)).replacingOccurrences(of: "listen: off", with: "listen: \(network.address(web)):7070\nnotify: {secret_file: \(secret)}")
            try f.write(text, to: config)
            try startAgent(web)
        }
        for web in webs { waitUp(web) }
        let hook = f.bareManifests + "/hooks/post-receive"
        try FileManager.default.copyItem(atPath: WorkerApp.packageRoot + "/hooks/post-receive", toPath: hook)
        chmod(hook, 0o755)
        for web in webs { try f.git(["--git-dir", f.bareManifests, "config", "--add", "slipway.agents", "http://\(network.address(web)):7070"]) }
        try f.git(["--git-dir", f.bareManifests, "config", "slipway.secretFile", secret])
        func pushManifests() throws -> Fixture.RunResult {
            let push = try network.run(on: "git", "/usr/bin/git", ["-C", f.manifestsRepo, "push", "-q", "--force", f.bareManifests, "main"])
            #expect(push.status == 0, "\(push.output)")
            return push
        }

        var seconds: [Double] = []
        let loginsBefore = server.acceptedLogins
        for round in 3...7 {
            let sha = try f.commitSource(["index.html": "v\(round)"])
            try f.git(["push", "-q", "--force", f.bareSource, "main"], in: f.sourceRepo)
            try f.commitManifest("all.yaml", f.plainManifest(app: "everywhere", repo: repo, ref: sha))
            let started = Date()
            _ = try pushManifests()
            let converged = f.waitUntil(seconds: 60) { webs.allSatisfy { served($0, "everywhere") == "v\(round)" } }
            #expect(converged, "push \(round): \(webs.map { "\($0)=\(served($0, "everywhere") ?? "-")" })")
            seconds.append(Date().timeIntervalSince(started))
        }
        let sorted = seconds.sorted()
        print("fleet: \(server.acceptedLogins - loginsBefore) SSH connections to the git server for \(seconds.count) notified pushes to \(count) hosts")
        print("fleet: push -> \(count) hosts converged over \(seconds.count) pushes: median \(String(format: "%.2f", sorted[sorted.count / 2])) s, max \(String(format: "%.2f", sorted.last!)) s")
        // Polling is at 1 h: within seconds means the notification did it.
        #expect(sorted.last! < 30)

        try migrateOnOneHostWhileTheOthersCheck(f, network: network, webs: webs, repo: repo, push: pushManifests, served: served)

        // A host whose link is down during a push is named by the hook; the others deploy; once
        // its link is back, its own poll timer catches it up: web-3 is restarted polling every 3 s
        // (the others stay at 1 h), and nothing else wakes it.
        let late = "web-3"
        stopAgent(late)
        let lateConfig = "\(f.root)/hosts/\(late)/agent.yaml"
        try f.write(try #require(f.read(lateConfig)).replacingOccurrences(of: "poll_interval: 1h", with: "poll_interval: 3s"), to: lateConfig)
        try startAgent(late)
        waitUp(late)
        // The link goes down between two polls: a connection cut while in use stalls until the
        // kernel gives up on it (libgit2 1.5 has no network timeout), which is not this case.
        func passes() -> Int {
            let metrics = f.read("\(f.root)/hosts/\(late)/state/metrics.prom") ?? ""
            let line = metrics.split(separator: "\n").first { $0.hasPrefix("slipway_passes_total ") }
            return line.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
        }
        let before = passes()
        #expect(f.waitUntil(seconds: 30) { passes() > before }, "\(late) does not poll: \(agentLog(late))")
        try network.setLink(late, up: false)
        let logMark = agentLog(late).count
        let sha = try f.commitSource(["index.html": "late"])
        try f.git(["push", "-q", "--force", f.bareSource, "main"], in: f.sourceRepo)
        try f.commitManifest("all.yaml", f.plainManifest(app: "everywhere", repo: repo, ref: sha))
        let push = try pushManifests()
        #expect(push.output.contains("slipway: agent http://\(network.address(late)):7070 missed the notification"), "\(push.output)")
        for web in webs where web != late { #expect(!push.output.contains(network.address(web) + ":7070 missed"), "\(push.output)") }
        #expect(f.waitUntil(seconds: 60) { webs.filter { $0 != late }.allSatisfy { served($0, "everywhere") == "late" } })
        // While the link is down its polls keep trying, fail on the manifests remote, and it keeps v7.
        let failedPolls = f.waitUntil(seconds: 60) {
            agentLog(late).dropFirst(logMark).components(separatedBy: "fetching from ssh://\(server.account)@\(gitAddress)").count > 2
        }
        #expect(failedPolls, "\(agentLog(late).dropFirst(logMark))")
        #expect(served(late, "everywhere") == "v7")
        try network.setLink(late, up: true)
        let linkUp = Date()
        #expect(f.waitUntil(seconds: 90) { served(late, "everywhere") == "late" }, "\(agentLog(late).dropFirst(logMark))")
        print("fleet: \(late) caught up by polling \(String(format: "%.1f", Date().timeIntervalSince(linkUp))) s after its link came back (poll_interval 3s)")
    }
}
