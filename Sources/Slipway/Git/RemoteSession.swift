import CGit2
import Foundation
import SlipwayCore

/// One connection to one remote, with the callbacks libgit2 asks for a login and for the server's
/// host key or certificate. Slipway answers both itself: the key or token from `git.credentials`
/// (or `git.ssh.identity`), and host keys strictly against `git.ssh.known_hosts`, for the port in
/// the URL (libgit2 1.5 passes the host but not the port). What a callback refuses is kept as an
/// operator-facing sentence, because libgit2's own message ("user cancelled hostkey check") says
/// nothing useful.
final class RemoteSession {
    let remote: RemoteURL
    let access: RemoteAccess
    let credential: GitConfig.Credential?
    /// Why a callback refused, in the operator's words.
    private(set) var refusal: String?
    private(set) var hostKeyChecked = false
    private(set) var certificateRefused = false
    private var loginAttempts = 0

    init(remote: RemoteURL, access: RemoteAccess) {
        self.remote = remote
        self.access = access
        self.credential = access.git.credential(for: remote)
    }

    /// Problems known before any connection: an identity that cannot log in, a token file that
    /// cannot be read. Nothing is tried against the server when one is found.
    func preflight() -> String? {
        switch remote.transport {
        case .ssh:
            let identity = access.git.identity(for: remote)
            guard let text = try? String(contentsOfFile: identity, encoding: .utf8) else {
                return "cannot read the SSH identity \(identity)\(credential.map { " (\($0.label))" } ?? " (git.ssh.identity)"); "
                    + "make one with: ssh-keygen -t ed25519 -N '' -f \(identity)"
            }
            if let problem = SSHIdentity.problem(SSHIdentity.kind(ofPrivateKey: text), path: identity) { return problem }
            if remote.user == nil && credential?.username == nil {
                return "\(remote) names no account to log in as; write it in the URL, for example ssh://git@\(remote.host ?? "host")/…"
            }
        case .https, .http:
            if let file = credential?.passwordFile, !FileManager.default.isReadableFile(atPath: file) {
                return "cannot read \(file), the password_file of \(credential!.label)"
            }
        case .local:
            let path = remote.text.hasPrefix("file://") ? String(remote.text.dropFirst(7)) : remote.text
            if !FileManager.default.fileExists(atPath: path) { return "no repository at \(path)" }
        case .git:
            break
        }
        return nil
    }

    /// The callbacks, with this session as their payload; valid while the session lives.
    func callbacks() -> git_remote_callbacks {
        var callbacks = git_remote_callbacks()
        git_remote_init_callbacks(&callbacks, UInt32(GIT_REMOTE_CALLBACKS_VERSION))
        callbacks.payload = Unmanaged.passUnretained(self).toOpaque()
        callbacks.credentials = { out, _, usernameFromURL, allowed, payload in
            guard let out, let payload else { return -1 }
            let session = Unmanaged<RemoteSession>.fromOpaque(payload).takeUnretainedValue()
            return session.login(out, username: usernameFromURL.map { String(cString: $0) }, allowed: allowed)
        }
        callbacks.certificate_check = { cert, valid, host, payload in
            guard let cert, let payload else { return -1 }
            let session = Unmanaged<RemoteSession>.fromOpaque(payload).takeUnretainedValue()
            return session.checkCertificate(cert, valid: valid != 0, host: host.map { String(cString: $0) } ?? "")
        }
        return callbacks
    }

    private func refuse(_ message: String) -> Int32 {
        refusal = message
        git_error_clear()
        return GIT_EUSER.rawValue
    }

    private func login(_ out: UnsafeMutablePointer<UnsafeMutablePointer<git_credential>?>, username: String?, allowed: UInt32) -> Int32 {
        loginAttempts += 1
        let user = username.flatMap { $0.isEmpty ? nil : $0 } ?? credential?.username ?? remote.user
        if allowed & GIT_CREDENTIAL_SSH_KEY.rawValue != 0 {
            let identity = access.git.identity(for: remote)
            let entry = credential.map { $0.label } ?? "git.ssh.identity"
            guard loginAttempts == 1 else {
                return refuse("\(remote.endpoint) refused the key \(identity) (\(entry)) for '\(user ?? "")'; add its public key "
                    + "(slipway key) to that account's authorized_keys or as the repository's deploy key")
            }
            guard let user else { return refuse("\(remote) names no account to log in as") }
            let pub = identity + ".pub"
            return git_credential_ssh_key_new(out, user, FileManager.default.fileExists(atPath: pub) ? pub : nil, identity, nil)
        }
        if allowed & GIT_CREDENTIAL_USERNAME.rawValue != 0, let user {
            return git_credential_username_new(out, user)
        }
        if allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT.rawValue != 0 {
            guard let credential, let name = credential.username, let file = credential.passwordFile else {
                return refuse("\(remote) asks for a login (HTTP 401) and no git.credentials entry matches it; add one with its "
                    + "url prefix, username and password_file to agent.yaml")
            }
            guard loginAttempts == 1 else {
                return refuse("\(remote) answered HTTP 401 to the login of \(credential.label) as '\(name)'; "
                    + "check the token in \(file) and the account's access to the repository")
            }
            guard let secret = Self.firstLine(of: file) else {
                return refuse("cannot read \(file), the password_file of \(credential.label)")
            }
            return git_credential_userpass_plaintext_new(out, name, secret)
        }
        return refuse("\(remote) asks for a kind of login Slipway does not offer (libgit2 types \(allowed))")
    }

    static func firstLine(of file: String) -> String? {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return nil }
        let line = text.split(separator: "\n", omittingEmptySubsequences: false).first.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        return line.isEmpty ? nil : line
    }

    private func checkCertificate(_ cert: UnsafeMutablePointer<git_cert>, valid: Bool, host: String) -> Int32 {
        switch cert.pointee.cert_type {
        case GIT_CERT_HOSTKEY_LIBSSH2:
            return checkHostKey(UnsafeMutableRawPointer(cert).assumingMemoryBound(to: git_cert_hostkey.self).pointee, host: host)
        case GIT_CERT_X509:
            if valid { return 0 }
            certificateRefused = true
            // libgit2 keeps mbedTLS's reason (unknown CA, expired, wrong name) for its error.
            return GIT_PASSTHROUGH.rawValue
        default:
            return refuse("\(host) presented a certificate of a kind Slipway cannot check")
        }
    }

    private func checkHostKey(_ cert: git_cert_hostkey, host: String) -> Int32 {
        let port = remote.port ?? 22
        guard cert.type.rawValue & GIT_CERT_SSH_RAW.rawValue != 0, let raw = cert.hostkey, cert.hostkey_len > 0,
              let key = SSHPublicKey(blob: Array(UnsafeRawBufferPointer(start: raw, count: cert.hostkey_len))) else {
            return refuse("\(host):\(port) sent a host key Slipway cannot read")
        }
        let file = access.git.knownHosts
        let known: KnownHosts
        if FileManager.default.fileExists(atPath: file) {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                return refuse("cannot read \(file) (git.ssh.known_hosts) to check the host key of \(host):\(port)")
            }
            known = KnownHosts(text)
        } else {
            known = KnownHosts("")
        }
        // The host libgit2 names is the one in the URL; the URL's is used, so a redirect cannot change it.
        let name = remote.host ?? host
        let verdict = known.verdict(host: name, port: port, key: key)
        hostKeyChecked = true
        guard let message = HostKeyRefusal.message(verdict, host: name, port: port, offered: key, file: file) else { return 0 }
        if case .changed = verdict { access.onHostKeyChanged("\(name):\(port)") }
        return refuse(message)
    }

    /// The one-line reason a connection or fetch failed, for logs and status.
    func failure(_ error: GitError) -> String {
        if let refusal { return refusal }
        if certificateRefused {
            let ca = access.git.caFile.map { "git.ca_file \($0) is in use; is it the CA that signed the server's certificate?" }
                ?? "if the server's certificate comes from a private CA, set git.ca_file to that CA's certificate"
            return "the TLS certificate of \(remote.host ?? "the server") was refused: \(error.message); \(ca)"
        }
        if let credential, error.message.contains("status code") {
            return "\(error.message) (logging in with \(credential.label))"
        }
        return error.message
    }
}
