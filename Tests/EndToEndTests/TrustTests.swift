import Foundation
import Testing

/// Signed manifests: keys made with ssh-keygen, commits signed by the git CLI, every verdict
/// cross-checked against `ssh-keygen -Y verify` on the same payload.
@Suite(.endToEnd)
struct TrustTests {
    final class Signed {
        let f: Fixture
        var allowedSigners: String { f.root + "/allowed_signers" }

        init(sources: Bool = false) throws {
            f = try Fixture(name: "trust")
            try FileManager.default.createDirectory(atPath: f.root + "/keys", withIntermediateDirectories: true)
            try f.write("""
            host: web-1
            manifests:
              repo: \(f.manifestsRepo)
              verify:
                allowed_signers: \(allowedSigners)
                sources: \(sources)
            apps_root: \(f.appsRoot)
            state_dir: \(f.stateDir)
            apps_user: \(Fixture.appsUser)
            \(f.localRoots)
            listen: 127.0.0.1:0
            """, to: f.configPath)
        }

        /// A new key pair; returns the private key's path.
        func key(_ name: String, type: String = "ed25519") throws -> String {
            let path = f.root + "/keys/" + name
            var args = ["-q", "-t", type, "-N", "", "-C", name, "-f", path]
            if type == "ecdsa" { args += ["-b", "256"] }
            let result = try Fixture.run("/usr/bin/ssh-keygen", args, timeout: 30)
            guard result.status == 0 else { throw FixtureError("ssh-keygen: \(result.stderr)") }
            return path
        }

        /// Writes allowed_signers with these keys (principal = key name).
        func allow(_ keys: [String]) throws {
            let lines = try keys.map { key -> String in
                let pub = try String(contentsOfFile: key + ".pub", encoding: .utf8).split(separator: " ")
                return "\((key as NSString).lastPathComponent)@slipway.test namespaces=\"git\" \(pub[0]) \(pub[1])"
            }
            try f.write("# who may deploy\n" + lines.joined(separator: "\n") + "\n", to: allowedSigners)
        }

        /// Commits in `repo`, signed with `key` when given.
        @discardableResult
        func commit(in repo: String, key: String?, message: String) throws -> String {
            try f.git(["add", "-A"], in: repo)
            var args = ["-c", "gpg.format=ssh"]
            if let key { args += ["-c", "user.signingkey=\(key)", "commit", "-q", "-S", "--allow-empty", "-m", message] }
            else { args += ["commit", "-q", "--allow-empty", "-m", message] }
            try f.git(args, in: repo)
            return try f.git(["rev-parse", "HEAD"], in: repo)
        }

        @discardableResult
        func manifest(_ text: String, key: String?, name: String = "demo.yaml") throws -> String {
            try f.write(text, to: f.manifestsRepo + "/manifests/" + name)
            return try commit(in: f.manifestsRepo, key: key, message: "manifest")
        }

        func source(_ content: String, key: String?) throws -> String {
            try f.write(content, to: f.sourceRepo + "/index.html")
            return try commit(in: f.sourceRepo, key: key, message: content)
        }

        /// What `ssh-keygen -Y verify` says of a commit, with the same allowed_signers.
        func sshKeygenAccepts(_ commit: String, in repo: String) throws -> Bool {
            let object = try f.git(["cat-file", "commit", commit], in: repo) + "\n"
            var signature: [String] = [], payload: [String] = [], inSignature = false, inHeaders = true
            for line in object.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
                if inHeaders && line.hasPrefix("gpgsig ") { inSignature = true; signature.append(String(line.dropFirst(7))); continue }
                if inSignature && line.hasPrefix(" ") { signature.append(String(line.dropFirst())); continue }
                inSignature = false
                if line.isEmpty { inHeaders = false }
                payload.append(line)
            }
            guard !signature.isEmpty else { return false }
            let sigFile = f.root + "/sig-\(commit)", payloadFile = f.root + "/payload-\(commit)"
            try f.write(signature.joined(separator: "\n") + "\n", to: sigFile)
            try f.write(payload.joined(separator: "\n"), to: payloadFile)
            let principals = try Fixture.run("/usr/bin/ssh-keygen", ["-Y", "find-principals", "-s", sigFile, "-f", allowedSigners], timeout: 30)
            guard principals.status == 0, let principal = principals.stdout.split(separator: "\n").first else { return false }
            let result = try Fixture.run("/bin/sh", ["-c", "ssh-keygen -Y verify -f '\(allowedSigners)' -I '\(principal)' -n git -s '\(sigFile)' < '\(payloadFile)'"], timeout: 30)
            return result.status == 0
        }

        func trust() throws -> [String: Any] {
            try f.statusJSON()["trust"] as? [String: Any] ?? [:]
        }
    }

    @Test func aTipSignedByAnAllowedKeyIsDeployedAndUnsignedOrUnknownTipsAreRefused() throws {
        let s = try Signed()
        let alice = try s.key("alice"), mallory = try s.key("mallory")
        try s.allow([alice])
        let sha = try s.source("v1", key: nil)
        let good = try s.manifest(s.f.manifest(ref: sha), key: alice)
        #expect(try s.sshKeygenAccepts(good, in: s.f.manifestsRepo))
        let first = try s.f.pass()
        #expect(first.status == 0, "\(first.output)")
        #expect(s.f.currentFile("frontend/index.html") == "v1")
        #expect(try s.trust()["lastVerifiedCommit"] as? String == good)
        #expect(try s.f.slipway(["status"]).stdout.contains("signed commits required: last verified \(good.prefix(12)) by alice@slipway.test SHA256:"))

        // Unsigned: refused, the agent stays on the last verified commit and v1 keeps serving.
        let v2 = try s.source("v2", key: nil)
        let unsigned = try s.manifest(s.f.manifest(ref: v2), key: nil)
        #expect(try !s.sshKeygenAccepts(unsigned, in: s.f.manifestsRepo))
        let refused = try s.f.pass()
        #expect(refused.stderr.contains("refusing manifests commit \(unsigned.prefix(12)): the commit is not signed"))
        #expect(s.f.currentFile("frontend/index.html") == "v1")
        let refusal = try s.trust()["refused"] as? [String: Any]
        #expect(refusal?["commit"] as? String == unsigned)
        #expect(refusal?["reason"] as? String == "unsigned")
        #expect(try s.trust()["lastVerifiedCommit"] as? String == good)
        // …and a metric names the refused commit (Prometheus text in state_dir/metrics.prom).
        let metrics = s.f.read(s.f.stateDir + "/metrics.prom") ?? ""
        let refusedLine = metrics.split(separator: "\n").first { $0.hasPrefix("slipway_manifests_refused{") }
        #expect(refusedLine?.contains("commit=\"\(unsigned)\"") == true)
        #expect(refusedLine?.contains("reason=\"unsigned\"") == true)
        #expect(refusedLine?.hasSuffix(" 1.0") == true)
        #expect(metrics.contains("slipway_manifests_refusals_total{reason=\"unsigned\"} 1"))

        // `slipway trust --check` gives the same verdicts on demand.
        let checkGood = try s.f.slipway(["trust", "--check", good])
        #expect(checkGood.status == 0)
        #expect(checkGood.stdout.contains("signed by alice@slipway.test SHA256:"))
        let checkUnsigned = try s.f.slipway(["trust", "--check", unsigned])
        #expect(checkUnsigned.status == 1)
        #expect(checkUnsigned.stdout.contains("refused (unsigned)"))

        // Signed by a key that is not allowed: refused, with that key's fingerprint.
        let forged = try s.manifest(s.f.manifest(ref: v2, keep: 4), key: mallory)
        #expect(try !s.sshKeygenAccepts(forged, in: s.f.manifestsRepo))
        let unknown = try s.f.pass()
        let malloryFingerprint = try Fixture.run("/usr/bin/ssh-keygen", ["-l", "-f", mallory + ".pub"], timeout: 10).stdout.split(separator: " ")[1]
        #expect(unknown.stderr.contains("signed by \(malloryFingerprint), which is not in allowed_signers"))
        #expect(s.f.currentFile("frontend/index.html") == "v1")

        // Adding the key takes effect on the next pass, with no restart.
        try s.allow([alice, mallory])
        #expect(try s.sshKeygenAccepts(forged, in: s.f.manifestsRepo))
        #expect(try s.f.pass().status == 0)
        #expect(s.f.currentFile("frontend/index.html") == "v2")
        #expect(try s.trust()["refused"] == nil)
        #expect(!(s.f.read(s.f.stateDir + "/metrics.prom") ?? "").contains("slipway_manifests_refused{"))
    }

    @Test func aCommitAlteredAfterSigningIsRefused() throws {
        let s = try Signed()
        let alice = try s.key("alice")
        try s.allow([alice])
        let sha = try s.source("v1", key: nil)
        try s.manifest(s.f.manifest(ref: sha), key: alice)
        #expect(try s.f.pass().status == 0)

        // Sign v2's manifest, then rewrite the commit object by hand to point at another tree
        // (the evil manifest) while keeping alice's signature.
        let v2 = try s.source("v2", key: nil)
        let signed = try s.manifest(s.f.manifest(ref: v2), key: alice)
        let evil = try s.source("evil", key: nil)
        try s.f.write(s.f.manifest(ref: evil), to: s.f.manifestsRepo + "/manifests/demo.yaml")
        try s.f.git(["add", "-A"], in: s.f.manifestsRepo)
        let evilTree = try s.f.git(["write-tree"], in: s.f.manifestsRepo)
        let original = try s.f.git(["cat-file", "commit", signed], in: s.f.manifestsRepo) + "\n"
        let originalTree = try s.f.git(["rev-parse", "\(signed)^{tree}"], in: s.f.manifestsRepo)
        let tampered = original.replacingOccurrences(of: "tree \(originalTree)", with: "tree \(evilTree)")
        try s.f.write(tampered, to: s.f.root + "/tampered")
        let forged = try s.f.git(["hash-object", "-t", "commit", "-w", s.f.root + "/tampered"], in: s.f.manifestsRepo)
        try s.f.git(["update-ref", "refs/heads/main", forged], in: s.f.manifestsRepo)
        #expect(try !s.sshKeygenAccepts(forged, in: s.f.manifestsRepo))

        let result = try s.f.pass()
        #expect(result.stderr.contains("does not match the commit's content"))
        #expect(s.f.currentFile("frontend/index.html") == "v1")
        #expect((try s.trust()["refused"] as? [String: Any])?["reason"] as? String == "bad-signature")
    }

    @Test func aForcePushBackToAnOlderSignedCommitIsRefusedUntilAnOperatorAllowsItOnce() throws {
        let s = try Signed()
        let alice = try s.key("alice")
        try s.allow([alice])
        let v1 = try s.source("v1", key: nil)
        let old = try s.manifest(s.f.manifest(ref: v1), key: alice)
        #expect(try s.f.pass().status == 0)
        let v2 = try s.source("v2", key: nil)
        try s.manifest(s.f.manifest(ref: v2), key: alice)
        #expect(try s.f.pass().status == 0)
        #expect(s.f.currentFile("frontend/index.html") == "v2")

        // The attacker resets the branch to the old, validly signed commit.
        try s.f.git(["update-ref", "refs/heads/main", old], in: s.f.manifestsRepo)
        #expect(try s.sshKeygenAccepts(old, in: s.f.manifestsRepo))
        let refused = try s.f.pass()
        #expect(refused.stderr.contains("does not descend from"))
        #expect(s.f.currentFile("frontend/index.html") == "v2")
        #expect((try s.trust()["refused"] as? [String: Any])?["reason"] as? String == "rewind")

        // An operator allows it once.
        let allow = try s.f.slipway(["trust", "--allow-rewind"])
        #expect(allow.status == 0, "\(allow.output)")
        #expect(try s.f.pass().status == 0)
        #expect(s.f.currentFile("frontend/index.html") == "v1")
        #expect(!FileManager.default.fileExists(atPath: s.f.stateDir + "/allow-rewind"))

        // Once: moving forward is fine, going back again is refused again.
        let v3 = try s.source("v3", key: nil)
        let newer = try s.manifest(s.f.manifest(ref: v3), key: alice)
        #expect(try s.f.pass().status == 0)
        try s.f.git(["update-ref", "refs/heads/main", old], in: s.f.manifestsRepo)
        #expect(try s.f.pass().stderr.contains("does not descend from \(newer.prefix(12))"))
        #expect(s.f.currentFile("frontend/index.html") == "v3")
    }

    @Test func withSourcesTrueAnAppWithAnUnsignedSourceCommitIsTheOnlyOneRefused() throws {
        let s = try Signed(sources: true)
        let alice = try s.key("alice")
        try s.allow([alice])
        let signedSource = try s.source("signed", key: alice)
        #expect(try s.sshKeygenAccepts(signedSource, in: s.f.sourceRepo))
        let unsignedSource = try s.source("unsigned", key: nil)
        try s.manifest(s.f.manifest(app: "good", ref: signedSource), key: alice, name: "good.yaml")
        try s.manifest(s.f.manifest(app: "bad", ref: unsignedSource), key: alice, name: "bad.yaml")
        let result = try s.f.pass()
        #expect(result.status != 0)
        #expect(result.stderr.contains("bad: source commit \(unsignedSource.prefix(12)) refused: the commit is not signed"))
        #expect(s.f.currentFile("frontend/index.html", app: "good") == "signed")
        #expect(s.f.current("bad") == nil)
        #expect(try s.f.appStatus("bad")["condition"] as? String == "untrusted")
    }

    @Test func ecdsaP256KeysAreSupported() throws {
        let s = try Signed()
        let carol = try s.key("carol", type: "ecdsa")
        try s.allow([carol])
        let sha = try s.source("v1", key: nil)
        let commit = try s.manifest(s.f.manifest(ref: sha), key: carol)
        #expect(try s.sshKeygenAccepts(commit, in: s.f.manifestsRepo))
        let result = try s.f.pass()
        #expect(result.status == 0, "\(result.output)")
        #expect(s.f.currentFile("frontend/index.html") == "v1")
    }

    @Test func aMissingOrMalformedAllowedSignersFileDeploysNothingNewAndKeepsServing() throws {
        let s = try Signed()
        let alice = try s.key("alice")
        try s.allow([alice])
        let v1 = try s.source("v1", key: nil)
        try s.manifest(s.f.manifest(ref: v1), key: alice)
        #expect(try s.f.pass().status == 0)

        let v2 = try s.source("v2", key: nil)
        try s.manifest(s.f.manifest(ref: v2), key: alice)
        try FileManager.default.removeItem(atPath: s.allowedSigners)
        let missing = try s.f.pass()
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("cannot read manifests.verify.allowed_signers \(s.allowedSigners)"))
        #expect(s.f.currentFile("frontend/index.html") == "v1")

        try s.f.write("alice@x ssh-ed25519 not-base64!!\n", to: s.allowedSigners)
        let malformed = try s.f.pass()
        #expect(malformed.status != 0)
        #expect(malformed.stderr.contains("\(s.allowedSigners):1:1: the ssh-ed25519 key is not valid base64 key data"))
        #expect(s.f.currentFile("frontend/index.html") == "v1")

        try s.allow([alice])
        #expect(try s.f.pass().status == 0)
        #expect(s.f.currentFile("frontend/index.html") == "v2")
    }

    @Test func withoutVerifyStatusSaysCommitsAreNotVerified() throws {
        let f = try Fixture()
        let sha = try f.commitSource(["index.html": "x"])
        try f.commitManifest("demo.yaml", f.manifest(ref: sha))
        #expect(try f.pass().status == 0)
        #expect(try f.slipway(["status"]).stdout.contains("manifests commits are not verified"))
    }
}
