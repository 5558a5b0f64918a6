/// What kind of key an SSH identity file holds, read from the file without decrypting it:
/// Debian's libssh2 1.10 signs RSA logins with SHA-1, which current OpenSSH servers refuse, so
/// an RSA identity is refused before any connection is tried.
public enum SSHIdentity {
    public enum Kind: Sendable, Equatable {
        /// An OpenSSH-format key (its public half is stored unencrypted in the file).
        case openSSH(SSHPublicKey)
        /// A PEM key: `RSA`, `EC`, `DSA`, or empty for PKCS#8.
        case pem(String)
        case unreadable
    }

    public static let usableTypes = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"]

    public static func kind(ofPrivateKey text: String) -> Kind {
        let lines = text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).map { $0.trimmingSpaces() }
        guard let begin = lines.firstIndex(where: { $0.hasPrefix("-----BEGIN ") && $0.hasSuffix("PRIVATE KEY-----") }) else { return .unreadable }
        let label = lines[begin].dropFirst("-----BEGIN ".count).dropLast("PRIVATE KEY-----".count).trimmingSpaces()
        guard label == "OPENSSH" else { return .pem(label) }
        let body = lines[(begin + 1)...].prefix(while: { !$0.hasPrefix("-----END") }).joined()
        guard let bytes = Base64.decode(body) else { return .unreadable }
        let magic = Array("openssh-key-v1".utf8) + [0]
        guard bytes.starts(with: magic) else { return .unreadable }
        var reader = SSHWireReader(Array(bytes.dropFirst(magic.count)))
        guard reader.string() != nil, reader.string() != nil, reader.string() != nil,
              let count = reader.uint32(), count >= 1, let blob = reader.string(), let key = SSHPublicKey(blob: blob) else { return .unreadable }
        return .openSSH(key)
    }

    /// Why this identity cannot log in, or nil when it can.
    public static func problem(_ kind: Kind, path: String) -> String? {
        switch kind {
        case .openSSH(let key) where usableTypes.contains(key.type):
            return nil
        case .pem("EC"):
            return nil
        case .pem("RSA"):
            return rsaProblem(path)
        case .openSSH(let key) where key.type == "ssh-rsa":
            return rsaProblem(path)
        case .openSSH(let key):
            return "\(path) is a \(key.type) key; Slipway logs in with ed25519 or ecdsa keys: ssh-keygen -t ed25519 -N '' -f \(path)"
        case .pem(let label):
            return "\(path) is a PEM \(label.isEmpty ? "PKCS#8" : label) key that Slipway cannot use; "
                + "use an OpenSSH ed25519 or ecdsa key: ssh-keygen -t ed25519 -N '' -f \(path)"
        case .unreadable:
            return "\(path) is not an SSH private key Slipway can read; make one with: ssh-keygen -t ed25519 -N '' -f \(path)"
        }
    }

    static func rsaProblem(_ path: String) -> String {
        return "\(path) is an RSA key, which cannot log in from this system (libssh2 1.10 signs RSA logins with SHA-1, "
                + "which OpenSSH refuses); make an ed25519 or ecdsa key instead: ssh-keygen -t ed25519 -N '' -f \(path)"
    }
}

extension Substring {
    func trimmingSpaces() -> String {
        String(drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }
}

extension String {
    func trimmingSpaces() -> String { self[...].trimmingSpaces() }
}

extension SSHPublicKey {
    /// `ssh-ed25519 AAAA…`, as authorized_keys and deploy-key forms take it.
    public var openSSHText: String { "\(type) \(Base64.encode(blob))" }
}
