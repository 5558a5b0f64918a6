import Foundation
import SlipwayCore

/// `slipway check`: everything a fresh install needs, tried for real (every remote with its
/// credentials and host keys, the accounts, env_dir, nginx's test command, free disk), one line each.
public struct HostCheck {
    public struct Line: Sendable {
        public var ok: Bool
        public var what: String
        /// What was found, or what is wrong and what to do.
        public var detail: String

        public var text: String { "\(ok ? "ok  " : "FAIL") \(what): \(detail)" }
    }

    let config: AgentConfig
    let configPath: String
    /// Below this much free space under apps_root or state_dir, the check fails.
    static let minimumFreeBytes: Int64 = 512 << 20

    public init(config: AgentConfig, configPath: String) {
        self.config = config
        self.configPath = configPath
    }

    public func run() -> [Line] {
        var lines = [Line(ok: true, what: "config", detail: "\(configPath) is valid (host \(config.host))")]
        lines += identityAndKnownHosts()
        let access = RemoteAccess(git: config.git, stateDir: config.stateDir)
        let (manifestsLine, manifests) = readManifests(access: access)
        lines.append(manifestsLine)
        var users: Set<String> = Set([config.appsUser].compactMap { $0 })
        var seen: Set<String> = [config.manifests.repo]
        for (app, entry) in (manifests?.valid ?? [:]).sorted(by: { $0.key < $1.key }) where entry.manifest.runs(on: config.host) {
            if let user = entry.manifest.backend?.user { users.insert(user) }
            let repo = entry.manifest.source.repo
            guard seen.insert(repo).inserted else { continue }
            lines.append(remote("source of \(app)", repo, access: access))
        }
        for user in users.sorted() {
            if let account = getpwnam(user) {
                lines.append(Line(ok: true, what: "account \(user)", detail: "uid \(account.pointee.pw_uid)"))
            } else {
                lines.append(Line(ok: false, what: "account \(user)", detail: "no such account; create it: useradd --system --no-create-home \(user)"))
            }
        }
        lines.append(envDir())
        if let nginx = config.nginx { lines.append(nginxTest(nginx)) }
        lines.append(freeDisk("apps_root", config.appsRoot))
        lines.append(freeDisk("state_dir", config.stateDir))
        return lines
    }

    func identityAndKnownHosts() -> [Line] {
        let usesSSH = ([config.manifests.repo]).contains { RemoteURL($0)?.transport == .ssh }
        var lines: [Line] = []
        let identity = config.git.sshIdentity
        if let text = try? String(contentsOfFile: identity, encoding: .utf8) {
            let kind = SSHIdentity.kind(ofPrivateKey: text)
            if let problem = SSHIdentity.problem(kind, path: identity) {
                lines.append(Line(ok: false, what: "ssh identity", detail: problem))
            } else if case .openSSH(let key) = kind {
                lines.append(Line(ok: true, what: "ssh identity", detail: "\(identity) (\(key.type) \(key.fingerprint)); 'slipway key' prints it"))
            } else {
                lines.append(Line(ok: true, what: "ssh identity", detail: identity))
            }
        } else if usesSSH || FileManager.default.fileExists(atPath: identity) {
            lines.append(Line(ok: false, what: "ssh identity", detail: "cannot read \(identity); make one: ssh-keygen -t ed25519 -N '' -f \(identity)"))
        }
        let file = config.git.knownHosts
        if let text = try? String(contentsOfFile: file, encoding: .utf8) {
            let known = KnownHosts(text)
            let bad = known.unreadable.map(String.init).joined(separator: ", ")
            lines.append(Line(ok: known.unreadable.isEmpty, what: "known_hosts",
                              detail: "\(file): \(known.entries.count) key\(known.entries.count == 1 ? "" : "s")"
                                + (bad.isEmpty ? "" : "; cannot read line \(bad): fix or remove it")))
        } else if usesSSH {
            lines.append(Line(ok: false, what: "known_hosts", detail: "cannot read \(file); add your git server's key after checking it: ssh-keyscan -p PORT HOST >> \(file)"))
        }
        return lines
    }

    func remote(_ what: String, _ url: String, access: RemoteAccess) -> Line {
        do {
            let refs = try GitRepository.listRemote(url, access: access)
            return Line(ok: true, what: what, detail: "\(url) reached (\(refs.count) ref\(refs.count == 1 ? "" : "s"))")
        } catch {
            return Line(ok: false, what: what, detail: "\(url): \(error.message)")
        }
    }

    /// The manifests, fetched into a temp mirror (the agent's own is left alone), for the app sources to try.
    func readManifests(access: RemoteAccess) -> (Line, ManifestSet?) {
        let what = "manifests"
        let url = config.manifests.repo
        let temp = FileManager.default.temporaryDirectory.appendingPathComponent("slipway-check-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: temp) }
        do {
            let repo = try GitRepository.openMirror(at: temp)
            let branch = "refs/heads/\(config.manifests.branch)"
            try repo.sync(from: url, refspecs: ["+\(branch):\(branch)"], access: access)
            guard let tip = try repo.referenceTarget(branch) else {
                return (Line(ok: false, what: what, detail: "\(url) has no branch \(config.manifests.branch)"), nil)
            }
            let files = try repo.files(atCommit: tip, under: config.manifests.path.value, matching: ManifestSet.isManifestPath)
            let set = ManifestSet(files: files.map { ManifestSet.File(path: $0.path, text: String(decoding: $0.bytes ?? [], as: UTF8.self)) })
            let invalid = set.invalid.count
            return (Line(ok: true, what: what, detail: "\(url) \(config.manifests.branch) at \(tip.prefix(12)): \(set.valid.count) app\(set.valid.count == 1 ? "" : "s")"
                        + (invalid > 0 ? ", \(invalid) invalid manifest\(invalid == 1 ? "" : "s") ('slipway status' says why)" : "")), set)
        } catch {
            return (Line(ok: false, what: what, detail: "\(url): \(error.message)"), nil)
        }
    }

    func envDir() -> Line {
        let dir = config.envDir
        var info = stat()
        guard stat(dir, &info) == 0 else {
            return Line(ok: true, what: "env_dir", detail: "\(dir) does not exist (no app can use env_file): mkdir -m 0700 \(dir)")
        }
        if (info.st_mode & S_IFMT) != S_IFDIR { return Line(ok: false, what: "env_dir", detail: "\(dir) is not a directory") }
        if info.st_uid != 0 || info.st_mode & 0o022 != 0 {
            return Line(ok: false, what: "env_dir", detail: "\(dir) must be owned by root and writable only by it: chown root: \(dir) && chmod 0700 \(dir)")
        }
        return Line(ok: true, what: "env_dir", detail: "\(dir)")
    }

    func nginxTest(_ nginx: AgentConfig.Nginx) -> Line {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", nginx.test]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch {
            return Line(ok: false, what: "nginx", detail: "cannot run '\(nginx.test)': \(error.localizedDescription)")
        }
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        if process.terminationStatus == 0 { return Line(ok: true, what: "nginx", detail: "'\(nginx.test)' passed") }
        let text = String(decoding: output, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
        return Line(ok: false, what: "nginx", detail: "'\(nginx.test)' exited \(process.terminationStatus): \(text)")
    }

    func freeDisk(_ key: String, _ path: String) -> Line {
        var dir = path
        while !FileManager.default.fileExists(atPath: dir), dir != "/" { dir = (dir as NSString).deletingLastPathComponent }
        var fs = statvfs()
        guard statvfs(dir, &fs) == 0 else { return Line(ok: false, what: "disk \(key)", detail: "cannot stat \(dir)") }
        let free = Int64(fs.f_bavail) * Int64(fs.f_frsize)
        let text = "\(free >> 20) MiB free under \(path)"
        return free < Self.minimumFreeBytes
            ? Line(ok: false, what: "disk \(key)", detail: text + "; builds need room: free some, or move \(key)")
            : Line(ok: true, what: "disk \(key)", detail: text)
    }
}
