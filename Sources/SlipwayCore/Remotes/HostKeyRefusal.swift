/// The operator-facing words for a host key Slipway refuses: which server, which key, what the
/// file says, and the command that fixes it once the operator has checked the key.
public enum HostKeyRefusal {
    /// nil when the verdict is `trusted`.
    public static func message(_ verdict: HostKeyVerdict, host: String, port: Int, offered: SSHPublicKey, file: String) -> String? {
        let endpoint = "\(host):\(port)"
        switch verdict {
        case .trusted:
            return nil
        case .unknown:
            return "host \(endpoint) is not in \(file) (it offered \(offered.type) \(offered.fingerprint)); "
                + "check that fingerprint with the server's operator, then run: \(keyscan(host: host, port: port, file: file))"
        case .changed(let known):
            let was = known.map { "\($0.type) \($0.fingerprint) (line \($0.line))" }.joined(separator: ", ")
            return "host key for \(endpoint) CHANGED: it offered \(offered.type) \(offered.fingerprint), but \(file) has \(was); "
                + "this may be an attack or a reinstalled server: nothing is fetched from it until you check the new key "
                + "and replace that line (ssh-keygen -R '\(KnownHosts.name(host: host, port: port))' -f \(file), then \(keyscan(host: host, port: port, file: file)))"
        case .revoked(let line):
            return "host key \(offered.type) \(offered.fingerprint) of \(endpoint) is marked @revoked in \(file) (line \(line)); refused"
        }
    }

    public static func keyscan(host: String, port: Int, file: String) -> String {
        "ssh-keyscan -p \(port) \(host) >> \(file)"
    }
}
