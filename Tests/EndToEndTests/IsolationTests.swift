import Foundation
import Testing

/// Issue 16, against the built binary with per-app accounts (no apps_user): what app A's build
/// can reach of app B, and what every build and worker runs with.
@Suite(.serialized, .enabled(if: geteuid() == 0, "needs root: per-app accounts"), .endToEnd)
struct IsolationTests {
    /// `/proc/<pid>/status` lines a process runs with.
    static func privileges(_ pid: Int32) -> [String: String] {
        let text = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        var found: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.count == 2, ["CapBnd", "CapEff", "CapPrm", "NoNewPrivs", "Uid"].contains(parts[0]) { found[parts[0]] = parts[1] }
        }
        return found
    }

    @Test func appAsBuildCannotReachAppB() throws {
        let f = try Fixture(name: "isolation")
        let tag = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let (a, b) = ("t16a\(tag)", "t16b\(tag)")
        defer { for app in [a, b] { _ = try? Fixture.run("/usr/sbin/userdel", ["slipway-" + app], timeout: 30) } }
        // Per-app accounts: the fixture's shared apps_user goes.
        let envDir = f.root + "/env"
        let config = try #require(f.read(f.configPath)).replacingOccurrences(of: "apps_user: \(Fixture.appsUser)\n", with: "")
        try f.write(config + "\nenv_dir: \(envDir)\n", to: f.configPath)
        let envFile = "\(envDir)/\(b).env"
        try f.write("B_SECRET=b-env-secret-\(tag)\n", to: envFile)
        chmod(envFile, 0o600)

        // B: a worker with a secret in its environment, a shared/ file and a release file.
        let bSHA = try f.commitSource(["release-secret.txt": "b-release-secret\n",
                                       "serve.sh": "echo b-shared-secret > data/secret.txt\nexec sleep 600\n"], message: "b", executable: ["serve.sh"])
        try f.commitManifest("\(b).yaml", """
            app: \(b)
            source: {repo: \(f.sourceRepo), ref: \(bSHA)}
            shared: [data]
            backend:
              env_file: \(envFile)
              command: ./serve.sh
            """)
        // The agent's own PATH names a directory builds must not get.
        let marker = f.root + "/agent-only-bin"
        let agent = try f.launch(["agent"], environment: ["PATH": marker + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
        defer {
            kill(agent.processIdentifier, SIGTERM)
            agent.waitUntilExit()
        }
        var bWorker: Int32 = 0
        #expect(f.waitUntil(seconds: 60) {
            let workers = ((try? f.appStatus(b))?["workers"] as? [String: Any])?["workers"] as? [[String: Any]] ?? []
            bWorker = workers.compactMap { ($0["pid"] as? NSNumber)?.int32Value }.first ?? 0
            return bWorker > 0 && FileManager.default.fileExists(atPath: "\(f.appsRoot)/\(b)/shared/data/secret.txt")
        }, "\((try? f.slipway(["status"]).output) ?? "")")
        let bRelease = "\(f.appsRoot)/\(b)/current/backend/release-secret.txt"
        let bShared = "\(f.appsRoot)/\(b)/shared/data/secret.txt"
        // Root sees each of them: so a refusal below is the account's, not a wrong path.
        #expect(f.read("/proc/\(bWorker)/environ")?.contains("B_SECRET=b-env-secret-\(tag)") == true)
        #expect(f.read(bRelease) == "b-release-secret\n" && f.read(bShared) == "b-shared-secret\n")

        // A's build tries each of B's secrets, and records what it runs with.
        let out = f.scratch + "/\(a)"
        let build = [
            "for p in /proc/\(bWorker)/environ \(envFile) \(bShared) \(bRelease); do if cat \"$p\" >/dev/null 2>&1; then echo \"read $p\"; else echo \"refused $p\"; fi; done > \(out).reads",
            "grep -E '^(Uid|CapBnd|CapEff|NoNewPrivs):' /proc/self/status > \(out).status",
            "echo \"$PATH\" > \(out).path",
        ].joined(separator: "; ")
        try f.commitManifest("\(a).yaml", "app: \(a)\nsource: {repo: \(f.sourceRepo), ref: main}\nbackend:\n  build: \(Fixture.yamlQuoted(build))\n")
        #expect(f.waitUntil(seconds: 60) { f.read(out + ".path") != nil && f.releases(a).count == 1 })

        let reads = f.read(out + ".reads") ?? ""
        for path in ["/proc/\(bWorker)/environ", envFile, bShared, bRelease] {
            #expect(reads.contains("refused \(path)\n"), "\(reads)")
        }
        // The build: the clean base PATH, no capabilities, no_new_privs, its own account.
        #expect(f.read(out + ".path") == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n")
        let status = f.read(out + ".status") ?? ""
        #expect(status.contains("CapBnd:\t0000000000000000") && status.contains("CapEff:\t0000000000000000") && status.contains("NoNewPrivs:\t1"), "\(status)")
        let aUID = try #require(getpwnam("slipway-" + a)).pointee.pw_uid, bUID = try #require(getpwnam("slipway-" + b)).pointee.pw_uid
        #expect(aUID != bUID && status.contains("Uid:\t\(aUID)\t"), "\(status)")

        // The worker: the same.
        let worker = Self.privileges(bWorker)
        #expect(worker["CapBnd"] == "0000000000000000" && worker["CapEff"] == "0000000000000000" && worker["NoNewPrivs"] == "1", "\(worker)")
        #expect(worker["Uid"]?.hasPrefix("\(bUID)\t") == true, "\(worker)")
        let environ = f.read("/proc/\(bWorker)/environ") ?? ""
        #expect(environ.contains("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\0") && !environ.contains(marker))
    }
}
