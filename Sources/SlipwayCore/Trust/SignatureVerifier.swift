import Crypto

/// Checks a git commit's SSH signature against the allowed signers, in-process: no gpg, no
/// ssh-keygen, no agent. ed25519 and ecdsa-sha2-nistp256 keys are supported.
public enum SignatureVerifier {
    public struct Signer: Sendable, Equatable {
        public var principals: String
        public var key: SSHPublicKey
    }

    public enum Failure: Error, Sendable, Equatable, CustomStringConvertible {
        case unsigned
        case malformed(String)
        case wrongNamespace(String)
        case unsupportedHash(String)
        case unsupportedKeyType(String, fingerprint: String)
        case unknownKey(fingerprint: String)
        case badSignature(fingerprint: String)

        public var description: String {
            switch self {
            case .unsigned: return "the commit is not signed"
            case .malformed(let why): return "the commit's signature is malformed: \(why)"
            case .wrongNamespace(let ns): return "the signature is for namespace '\(ns)', not 'git'"
            case .unsupportedHash(let hash): return "the signature uses hash '\(hash)'; only sha512 and sha256 are supported"
            case .unsupportedKeyType(let type, let fp): return "the commit is signed with a \(type) key (\(fp)); Slipway verifies ssh-ed25519 and ecdsa-sha2-nistp256 keys"
            case .unknownKey(let fp): return "the commit is signed by \(fp), which is not in allowed_signers"
            case .badSignature(let fp): return "the signature by \(fp) does not match the commit's content"
            }
        }

        /// A short word for logs and metric labels.
        public var reason: String {
            switch self {
            case .unsigned: return "unsigned"
            case .malformed: return "malformed"
            case .wrongNamespace: return "wrong-namespace"
            case .unsupportedHash: return "unsupported-hash"
            case .unsupportedKeyType: return "unsupported-key-type"
            case .unknownKey: return "unknown-key"
            case .badSignature: return "bad-signature"
            }
        }

        public var fingerprint: String? {
            switch self {
            case .unsupportedKeyType(_, let fp), .unknownKey(let fp), .badSignature(let fp): return fp
            default: return nil
            }
        }
    }

    /// `armored` is the commit's `gpgsig` header (nil when unsigned); `payload` the commit object
    /// without it, exactly as git signed it.
    public static func verify(armored: String?, payload: [UInt8], allowed: AllowedSigners, namespace: String = "git") -> Result<Signer, Failure> {
        guard let armored else { return .failure(.unsigned) }
        let signature: SSHSignature
        do {
            signature = try SSHSignature.parse(armored: armored)
        } catch {
            return .failure(.malformed(error.description))
        }
        guard signature.namespace == namespace else { return .failure(.wrongNamespace(signature.namespace)) }
        guard let signed = signature.signedData(for: payload) else { return .failure(.unsupportedHash(signature.hashAlgorithm)) }
        let key = signature.publicKey
        guard key.isSupported else { return .failure(.unsupportedKeyType(key.type, fingerprint: key.fingerprint)) }
        guard let entry = allowed.entries.first(where: { $0.key == key && ($0.namespaces?.contains(namespace) ?? true) }) else {
            return .failure(.unknownKey(fingerprint: key.fingerprint))
        }
        guard signature.signatureType == key.type, isValid(signature.signature, over: signed, key: key) else {
            return .failure(.badSignature(fingerprint: key.fingerprint))
        }
        return .success(Signer(principals: entry.principals, key: key))
    }

    static func isValid(_ signature: [UInt8], over data: [UInt8], key: SSHPublicKey) -> Bool {
        guard let material = key.keyMaterial else { return false }
        switch key.type {
        case SSHPublicKey.ed25519:
            guard let publicKey = try? Curve25519.Signing.PublicKey(rawRepresentation: material) else { return false }
            return publicKey.isValidSignature(signature, for: data)
        case SSHPublicKey.ecdsaP256:
            // The signature blob is mpint r, mpint s; P256 wants r || s, 32 bytes each.
            var reader = SSHWireReader(signature)
            guard let r = reader.string(), let s = reader.string(), reader.isAtEnd,
                  let raw = fixedWidth(r).flatMap({ r in fixedWidth(s).map { r + $0 } }),
                  let ecdsa = try? P256.Signing.ECDSASignature(rawRepresentation: raw),
                  let publicKey = try? P256.Signing.PublicKey(x963Representation: material) else { return false }
            return publicKey.isValidSignature(ecdsa, for: data)
        default:
            return false
        }
    }

    /// An SSH mpint as exactly 32 big-endian bytes, or nil when it does not fit.
    static func fixedWidth(_ mpint: [UInt8]) -> [UInt8]? {
        let trimmed = Array(mpint.drop(while: { $0 == 0 }))
        guard trimmed.count <= 32 else { return nil }
        return [UInt8](repeating: 0, count: 32 - trimmed.count) + trimmed
    }
}
