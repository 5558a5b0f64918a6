import Crypto

/// An OpenSSH `SSHSIG` signature (what `git commit -S` writes with `gpg.format=ssh`), parsed from
/// its armored text. See OpenSSH's PROTOCOL.sshsig.
public struct SSHSignature: Sendable, Equatable {
    public var publicKey: SSHPublicKey
    public var namespace: String
    public var reserved: [UInt8]
    public var hashAlgorithm: String
    public var signatureType: String
    public var signature: [UInt8]

    public enum ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        case notArmored, badBase64, truncated, badMagic, unsupportedVersion(UInt32), badPublicKey, trailingBytes

        public var description: String {
            switch self {
            case .notArmored: return "the signature is not an armored SSH signature (-----BEGIN SSH SIGNATURE-----)"
            case .badBase64: return "the signature's base64 is malformed"
            case .truncated: return "the signature is truncated"
            case .badMagic: return "the signature does not start with SSHSIG"
            case .unsupportedVersion(let v): return "SSHSIG version \(v) is not supported (only 1)"
            case .badPublicKey: return "the signature's public key is malformed"
            case .trailingBytes: return "the signature has trailing bytes"
            }
        }
    }

    static let magic = Array("SSHSIG".utf8)

    public static func parse(armored text: String) throws(ParseError) -> SSHSignature {
        let begin = "-----BEGIN SSH SIGNATURE-----", end = "-----END SSH SIGNATURE-----"
        let lines = text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).map { String($0).trimmingWhitespace() }
        guard let first = lines.firstIndex(of: begin), let last = lines.lastIndex(of: end), first < last else { throw .notArmored }
        guard let blob = Base64.decode(lines[(first + 1)..<last].joined()) else { throw .badBase64 }
        return try parse(blob: blob)
    }

    public static func parse(blob: [UInt8]) throws(ParseError) -> SSHSignature {
        var reader = SSHWireReader(blob)
        guard let magic = reader.fixed(6) else { throw .truncated }
        guard magic == Self.magic else { throw .badMagic }
        guard let version = reader.uint32() else { throw .truncated }
        guard version == 1 else { throw .unsupportedVersion(version) }
        guard let keyBlob = reader.string(), let namespace = reader.text(), let reserved = reader.string(),
              let hash = reader.text(), let signatureBlob = reader.string() else { throw .truncated }
        guard reader.isAtEnd else { throw .trailingBytes }
        guard let key = SSHPublicKey(blob: keyBlob) else { throw .badPublicKey }
        var signatureReader = SSHWireReader(signatureBlob)
        guard let signatureType = signatureReader.text(), let signature = signatureReader.string() else { throw .truncated }
        return SSHSignature(publicKey: key, namespace: namespace, reserved: reserved, hashAlgorithm: hash,
                            signatureType: signatureType, signature: signature)
    }

    /// What the key actually signed for `message`: the SSHSIG preamble over the message's hash.
    func signedData(for message: [UInt8]) -> [UInt8]? {
        let digest: [UInt8]
        switch hashAlgorithm {
        case "sha512": digest = Array(SHA512.hash(data: message))
        case "sha256": digest = Array(SHA256.hash(data: message))
        default: return nil
        }
        return Self.magic + SSHWire.string(namespace) + SSHWire.string(reserved) + SSHWire.string(hashAlgorithm) + SSHWire.string(digest)
    }
}
