import Foundation
import Testing
@testable import Slipway
@testable import SlipwayCore

/// Which account an app runs as under root, tried with the accounts an attacker would name.
@Suite(.serialized, .enabled(if: geteuid() == 0, "needs root: creates accounts"))
struct AppAccountTests {
    func config(allowed: [String] = [], privilegedGroups: [String] = [], appsUser: String? = nil) -> AgentConfig {
        var config = AgentConfig(host: "h", manifests: .init(repo: "/m.git"))
        config.accounts = AccountPolicy(allowed: allowed, privilegedGroups: privilegedGroups)
        config.appsUser = appsUser
        return config
    }

    func refusal(_ app: String = "web", declared: String?, _ config: AgentConfig) -> String? {
        do {
            _ = try AppAccount.forApp(AppName(app)!, declared: declared, config: config, manifestPath: "manifests/web.yaml")
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func aUidZeroAliasIsRefusedByUidWhateverItsName() throws {
        let name = "slw16toor\(String(UInt16.random(in: 0...UInt16.max), radix: 36))"
        try TestAccount.run(["/usr/sbin/useradd", "--non-unique", "--uid", "0", "--gid", "0", "--no-create-home", "--shell", "/usr/sbin/nologin", name])
        defer { try? TestAccount.run(["/usr/sbin/userdel", "--force", name]) }
        let message = refusal(declared: name, config(allowed: [name]))
        #expect(message == "manifests/web.yaml: backend.user '\(name)' has uid 0 and gid 0: that is root; Slipway never runs an app as root")
        // As the shared apps_user too.
        #expect(refusal(declared: nil, config(appsUser: name))?.contains("has uid 0") == true)
    }

    @Test func anAccountNotAllowedIsRefused() {
        let message = refusal(declared: "www-data", config())
        #expect(message == "manifests/web.yaml: backend.user 'www-data' is not in agent.yaml accounts.allowed (empty by default); "
                + "list it there, or drop backend.user so the app runs as its own account slipway-web")
    }

    @Test func anAllowedAccountInAPrivilegedGroupIsRefused() throws {
        let account = try TestAccount()
        try TestAccount.run(["/usr/sbin/usermod", "--append", "--groups", "adm", account.name])
        #expect(refusal(declared: account.name, config(allowed: [account.name]))
                == "manifests/web.yaml: backend.user '\(account.name)' is in the privileged group 'adm' (adm); Slipway refuses to run an app as it: "
                + "take the account out (gpasswd -d \(account.name) adm) or use another")

        // A group the operator lists counts the same (docker is not installed here: its own group stands in).
        let group = "slw16g\(String(UInt16.random(in: 0...UInt16.max), radix: 36))"
        try TestAccount.run(["/usr/sbin/groupadd", "--system", group])
        defer { try? TestAccount.run(["/usr/sbin/groupdel", group]) }
        let other = try TestAccount()
        try TestAccount.run(["/usr/sbin/usermod", "--append", "--groups", group, other.name])
        #expect(refusal(declared: other.name, config(allowed: [other.name])) == nil)
        #expect(refusal(declared: other.name, config(allowed: [other.name], privilegedGroups: [group]))?.contains("is in the privileged group '\(group)'") == true)
    }

    @Test func twoAppsGetTwoAccountsWithNoShellAndNoGroups() throws {
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let apps = ["t16a\(suffix)", "t16b\(suffix)"]
        defer { for app in apps { try? TestAccount.run(["/usr/sbin/userdel", "slipway-" + app]) } }
        let accounts = try apps.map { try #require(try AppAccount.forApp(AppName($0)!, declared: nil, config: config())) }
        #expect(accounts.map(\.name) == apps.map { "slipway-" + $0 })
        #expect(accounts[0].uid != accounts[1].uid && accounts[0].gid != accounts[1].gid)
        for account in accounts {
            #expect(account.uid != 0 && account.isPerApp)
            #expect(account.groupNames() == [account.name])  // its own group, nothing else
            let shell = try #require(getpwnam(account.name)).pointee.pw_shell.map { String(cString: $0) }
            #expect(shell == "/usr/sbin/nologin")
            #expect(account.wrap(["/bin/true"]).contains("--clear-groups"))
        }
        // The second time, the same account (not a new one).
        #expect(try AppAccount.forApp(AppName(apps[0])!, declared: nil, config: config())?.uid == accounts[0].uid)
    }

    @Test func aLongAppNameGetsAShortUniqueAccountName() {
        let long = AppName(String(repeating: "a", count: 40))!, other = AppName(String(repeating: "a", count: 39) + "b")!
        let names = [AccountPolicy.accountName(for: long), AccountPolicy.accountName(for: other)]
        #expect(names.allSatisfy { $0.utf8.count <= 32 && AccountName.isValid($0) && $0.hasPrefix("slipway-") })
        #expect(names[0] != names[1])
        #expect(AccountPolicy.accountName(for: AppName("web")!) == "slipway-web")
    }

    /// What a build or worker runs with: no capabilities (none to inherit, an empty bounding
    /// set) and no_new_privs, so even a setuid-root binary gives nothing back.
    @Test func theWrappedCommandHasNoPrivilegesLeft() async throws {
        let account = try TestAccount()
        let dir = TempDir()
        chmod(dir.path, 0o755)
        let out = dir.path + "/status"
        let fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        defer { close(fd) }
        let me = AppAccount(name: account.name, uid: account.uid, gid: account.gid, home: "/", isPerApp: true)
        let child = try ChildProcess.spawnShell("grep -E '^(Uid|Groups|CapBnd|CapEff|NoNewPrivs):' /proc/self/status; /usr/bin/sudo -n true 2>&1 || echo sudo-refused",
                                                in: dir.path, environment: ["PATH": "/usr/bin:/bin"],
                                                outputFD: fd, account: me)
        #expect(await child.wait(timeout: .seconds(30)) == .exited(0))
        let status = try String(contentsOfFile: out, encoding: .utf8)
        #expect(status.contains("Uid:\t\(account.uid)\t\(account.uid)\t\(account.uid)\t\(account.uid)"))
        #expect(status.contains("CapBnd:\t0000000000000000"))
        #expect(status.contains("CapEff:\t0000000000000000"))
        #expect(status.contains("NoNewPrivs:\t1"))
        #expect(status.range(of: "Groups:\t\n") != nil || status.range(of: "Groups:\t \n") != nil || status.contains("Groups:\n"))
        #expect(status.contains("sudo-refused") || !FileManager.default.fileExists(atPath: "/usr/bin/sudo"))
    }
}
