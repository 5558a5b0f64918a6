import Crypto

/// An SSH public key: its type and its wire-format blob, which is what signatures embed and
/// what `allowed_signers` lists (base64). Two keys are the same key when their blobs are equal.
public struct SSHPublicKey: Sendable, Hashable {
    public let type: String
    public let blob: [UInt8]

    public static let ed25519 = "ssh-ed25519"
    public static let ecdsaP256 = "ecdsa-sha2-nistp256"
    public static let supportedTypes = [ed25519, ecdsaP256]

    /// Parses a key blob, checking that its declared type matches its contents.
    public init?(blob: [UInt8]) {
        var reader = SSHWireReader(blob)
        guard let type = reader.text() else { return nil }
        switch type {
        case Self.ed25519:
            guard let key = reader.string(), key.count == 32, reader.isAtEnd else { return nil }
        case Self.ecdsaP256:
            guard reader.text() == "nistp256", let point = reader.string(), point.count == 65, point[0] == 4, reader.isAtEnd else { return nil }
        default:
            break // Unsupported types still parse, so errors can name them.
        }
        self.type = type
        self.blob = blob
    }

    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    public var fingerprint: String {
        "SHA256:" + Base64.encode(Array(SHA256.hash(data: blob)), padded: false)
    }

    public var isSupported: Bool { Self.supportedTypes.contains(type) }

    /// The raw key material after the type (ed25519: 32 bytes; ecdsa: the 65-byte point).
    var keyMaterial: [UInt8]? {
        var reader = SSHWireReader(blob)
        _ = reader.string()
        if type == Self.ecdsaP256 { _ = reader.string() }
        return reader.string()
    }
}
