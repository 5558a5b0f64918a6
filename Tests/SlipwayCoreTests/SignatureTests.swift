import Crypto
import Testing
@testable import SlipwayCore

/// SSHSIG parsing and verification with keys made in-process, so every byte of the blob is
/// under the test's control. (The end-to-end trust tests cross-check real git signatures
/// against ssh-keygen.)
@Suite struct SignatureTests {
    let signingKey = Curve25519.Signing.PrivateKey()
    let payload = Array("tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor a <a@b> 1 +0000\n\nhello\n".utf8)

    var publicBlob: [UInt8] { SSHWire.string("ssh-ed25519") + SSHWire.string(Array(signingKey.publicKey.rawRepresentation)) }

    /// An SSHSIG blob, with every field overridable to make it wrong.
    func blob(magic: String = "SSHSIG", version: UInt32 = 1, namespace: String = "git", hash: String = "sha512",
              signedNamespace: String? = nil, message: [UInt8]? = nil, keyBlob: [UInt8]? = nil, signatureType: String = "ssh-ed25519") throws -> [UInt8] {
        let digest: [UInt8] = hash == "sha256" ? Array(SHA256.hash(data: message ?? payload)) : Array(SHA512.hash(data: message ?? payload))
        let signed = Array("SSHSIG".utf8) + SSHWire.string(signedNamespace ?? namespace) + SSHWire.string([]) + SSHWire.string(hash) + SSHWire.string(digest)
        let raw = Array(try signingKey.signature(for: signed))
        var out = Array(magic.utf8)
        out += [UInt8(version >> 24), UInt8((version >> 16) & 0xFF), UInt8((version >> 8) & 0xFF), UInt8(version & 0xFF)]
        out += SSHWire.string(keyBlob ?? publicBlob) + SSHWire.string(namespace) + SSHWire.string([]) + SSHWire.string(hash)
        out += SSHWire.string(SSHWire.string(signatureType) + SSHWire.string(raw))
        return out
    }

    func armor(_ blob: [UInt8]) -> String {
        let encoded = Base64.encode(blob)
        var lines = ["-----BEGIN SSH SIGNATURE-----"]
        var rest = Substring(encoded)
        while !rest.isEmpty {
            lines.append(String(rest.prefix(70)))
            rest = rest.dropFirst(70)
        }
        return (lines + ["-----END SSH SIGNATURE-----"]).joined(separator: "\n")
    }

    var allowed: AllowedSigners {
        AllowedSigners(entries: [.init(principals: "alice", key: SSHPublicKey(blob: publicBlob)!, namespaces: ["git"], line: 1)])
    }

    func verify(_ blob: [UInt8], payload: [UInt8]? = nil, allowed: AllowedSigners? = nil) -> Result<SignatureVerifier.Signer, SignatureVerifier.Failure> {
        SignatureVerifier.verify(armored: armor(blob), payload: payload ?? self.payload, allowed: allowed ?? self.allowed)
    }

    @Test func aGoodSignatureVerifies() throws {
        #expect(try verify(blob()).get().principals == "alice")
        #expect(try verify(blob(hash: "sha256")).get().principals == "alice")
    }

    @Test func aChangedPayloadFails() throws {
        var changed = payload
        changed[changed.count - 2] ^= 1
        guard case .failure(.badSignature) = verify(try blob(), payload: changed) else {
            Issue.record("a changed payload verified")
            return
        }
    }

    @Test func unsignedUnknownKeyAndWrongNamespaceAreRefused() throws {
        #expect(SignatureVerifier.verify(armored: nil, payload: payload, allowed: allowed) == .failure(.unsigned))
        let stranger = SSHPublicKey(blob: SSHWire.string("ssh-ed25519") + SSHWire.string(Array(Curve25519.Signing.PrivateKey().publicKey.rawRepresentation)))!
        let fingerprint = SSHPublicKey(blob: publicBlob)!.fingerprint
        #expect(verify(try blob(), allowed: AllowedSigners(entries: [.init(principals: "x", key: stranger, namespaces: nil, line: 1)]))
                == .failure(.unknownKey(fingerprint: fingerprint)))
        #expect(verify(try blob(namespace: "file")) == .failure(.wrongNamespace("file")))
        // A key allowed only for another namespace does not count for git.
        let fileOnly = AllowedSigners(entries: [.init(principals: "a", key: SSHPublicKey(blob: publicBlob)!, namespaces: ["file"], line: 1)])
        #expect(verify(try blob(), allowed: fileOnly) == .failure(.unknownKey(fingerprint: fingerprint)))
        // Signed under one namespace, relabelled as git: the signature no longer matches.
        #expect(verify(try blob(signedNamespace: "file")) == .failure(.badSignature(fingerprint: fingerprint)))
    }

    @Test func malformedBlobsAreErrorsNeverCrashes() throws {
        let good = try blob()
        func parse(_ bytes: [UInt8]) -> SSHSignature.ParseError? {
            do { _ = try SSHSignature.parse(blob: bytes); return nil } catch { return error }
        }
        #expect(parse(try blob(magic: "SSHSIX")) == .badMagic)
        #expect(parse(try blob(version: 2)) == .unsupportedVersion(2))
        #expect(parse(good + [0]) == .trailingBytes)
        #expect(parse(try blob(keyBlob: SSHWire.string("ssh-ed25519") + SSHWire.string([1, 2, 3]))) == .badPublicKey)
        // Every truncation of a good blob is an error.
        for length in 0..<good.count {
            #expect(parse(Array(good.prefix(length))) != nil, "prefix \(length)")
        }
        // Lengths that point past the end.
        var huge = good
        huge[10] = 0xFF
        #expect(parse(huge) != nil)
        #expect(throws: SSHSignature.ParseError.notArmored) { try SSHSignature.parse(armored: "not a signature") }
        #expect(throws: SSHSignature.ParseError.badBase64) { try SSHSignature.parse(armored: "-----BEGIN SSH SIGNATURE-----\n!!!!\n-----END SSH SIGNATURE-----") }
        guard case .failure(.unsupportedHash("md5")) = verify(try blob(hash: "md5")) else {
            Issue.record("an unknown hash was accepted")
            return
        }
        guard case .failure(.malformed) = verify(Array(good.prefix(20))) else {
            Issue.record("a truncated blob was not reported as malformed")
            return
        }
    }

    @Test func unsupportedKeyTypesAreNamed() throws {
        let rsaBlob = SSHWire.string("ssh-rsa") + SSHWire.string([1, 0, 1]) + SSHWire.string([0xC0, 0xFF, 0xEE])
        guard case .failure(.unsupportedKeyType("ssh-rsa", _)) = verify(try blob(keyBlob: rsaBlob)) else {
            Issue.record("an RSA key was not refused by type")
            return
        }
        #expect(SignatureVerifier.Failure.unsupportedKeyType("ssh-rsa", fingerprint: "SHA256:x").description.contains("ssh-rsa"))
    }

    @Test func ecdsaP256SignaturesVerify() throws {
        let key = P256.Signing.PrivateKey()
        let keyBlob = SSHWire.string("ecdsa-sha2-nistp256") + SSHWire.string("nistp256") + SSHWire.string(Array(key.publicKey.x963Representation))
        let digest = Array(SHA512.hash(data: payload))
        let signed = Array("SSHSIG".utf8) + SSHWire.string("git") + SSHWire.string([]) + SSHWire.string("sha512") + SSHWire.string(digest)
        let raw = Array(try key.signature(for: signed).rawRepresentation)
        // mpints: a leading zero when the top bit is set.
        func mpint(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
            let trimmed = Array(bytes.drop(while: { $0 == 0 }))
            return SSHWire.string(trimmed.first.map { $0 & 0x80 != 0 } == true ? [0] + trimmed : trimmed)
        }
        var out = Array("SSHSIG".utf8) + [0, 0, 0, 1]
        out += SSHWire.string(keyBlob) + SSHWire.string("git") + SSHWire.string([]) + SSHWire.string("sha512")
        out += SSHWire.string(SSHWire.string("ecdsa-sha2-nistp256") + SSHWire.string(mpint(raw[0..<32]) + mpint(raw[32..<64])))
        let allowed = AllowedSigners(entries: [.init(principals: "carol", key: SSHPublicKey(blob: keyBlob)!, namespaces: nil, line: 1)])
        #expect(try verify(out, allowed: allowed).get().principals == "carol")
    }

    @Test func base64RoundTrips() {
        for length in 0..<40 {
            let bytes = (0..<length).map { UInt8(($0 * 37 + 11) & 0xFF) }
            #expect(Base64.decode(Base64.encode(bytes)) == bytes)
            #expect(Base64.decode(Base64.encode(bytes, padded: false)) == bytes)
        }
        #expect(Base64.decode("aGVsbG8=") == Array("hello".utf8))
        #expect(Base64.decode("aGV$bG8=") == nil)
        #expect(Base64.decode("aGVs=bG8") == nil)
    }

    @Test func fingerprintsMatchSSHKeygensForm() {
        let key = SSHPublicKey(blob: publicBlob)!
        #expect(key.fingerprint.hasPrefix("SHA256:"))
        #expect(!key.fingerprint.hasSuffix("="))
        #expect(key.fingerprint.count == 7 + 43)
    }
}

@Suite struct AllowedSignersTests {
    let keyText = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBZkxk6Po3qOJGiu/1PUWXHmg5smG0DetJblp5JnieCH"

    @Test func parsesLinesWithAndWithoutOptions() throws {
        let text = """
        # deployers
        alice@example.com \(keyText) alice's laptop

        bob@example.com,ci@example.com namespaces="git,file" \(keyText)
        """
        let signers = try AllowedSigners.parse(text, file: "allowed").get()
        #expect(signers.entries.count == 2)
        #expect(signers.entries[0].principals == "alice@example.com")
        #expect(signers.entries[0].namespaces == nil)
        #expect(signers.entries[1].namespaces == ["git", "file"])
        #expect(signers.entries[1].line == 4)
    }

    @Test func malformedLinesAreDiagnosedWithTheirLine() {
        func problems(_ text: String) -> String {
            if case .failure(let d) = AllowedSigners.parse(text, file: "allowed") { return d.description }
            return ""
        }
        #expect(problems("alice\n").contains("allowed:1:1: expected 'principals key-type base64-key'"))
        #expect(problems("# c\nalice ssh-ed25519 %%%\n").contains("allowed:2:1: the ssh-ed25519 key is not valid base64 key data"))
        #expect(problems("alice ssh-rsa \(keyText.split(separator: " ")[1])\n").contains("the key says it is ssh-ed25519, but the line says ssh-rsa"))
        #expect(problems("alice cert-authority \(keyText)\n").contains("option 'cert-authority' is not supported"))
    }
}

@Suite struct ManifestTrustTests {
    let signer = SignatureVerifier.Signer(principals: "a", key: SSHPublicKey(blob: SSHWire.string("ssh-ed25519") + SSHWire.string([UInt8](repeating: 1, count: 32)))!)

    @Test func decisions() {
        let ok: Result<SignatureVerifier.Signer, SignatureVerifier.Failure> = .success(signer)
        let bad: Result<SignatureVerifier.Signer, SignatureVerifier.Failure> = .failure(.unsigned)
        #expect(ManifestTrust.decide(tip: "b", signature: ok, lastVerified: nil, descends: true, rewindAllowed: false) == .accept(commit: "b", consumesRewind: false))
        #expect(ManifestTrust.decide(tip: "b", signature: ok, lastVerified: "a", descends: true, rewindAllowed: false) == .accept(commit: "b", consumesRewind: false))
        // The already-verified tip needs nothing more.
        #expect(ManifestTrust.decide(tip: "a", signature: bad, lastVerified: "a", descends: true, rewindAllowed: false) == .accept(commit: "a", consumesRewind: false))
        guard case .refuse(_, "unsigned", _, nil, "a") = ManifestTrust.decide(tip: "b", signature: bad, lastVerified: "a", descends: true, rewindAllowed: false) else {
            Issue.record("unsigned tip accepted")
            return
        }
        guard case .refuse(_, "rewind", _, _, "a") = ManifestTrust.decide(tip: "b", signature: ok, lastVerified: "a", descends: false, rewindAllowed: false) else {
            Issue.record("rewind accepted")
            return
        }
        #expect(ManifestTrust.decide(tip: "b", signature: ok, lastVerified: "a", descends: false, rewindAllowed: true) == .accept(commit: "b", consumesRewind: true))
        // An allowance never lets an unsigned rewind through.
        guard case .refuse = ManifestTrust.decide(tip: "b", signature: bad, lastVerified: "a", descends: false, rewindAllowed: true) else {
            Issue.record("unsigned rewind accepted")
            return
        }
    }
}
