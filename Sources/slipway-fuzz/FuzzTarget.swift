import SlipwayCore

/// What the fuzzers feed hostile bytes to: every parser that reads what someone else wrote
/// (a manifest pusher, an operator's files, a signed commit, the network). Each must answer
/// with a value or an error, never a crash, a hang or unbounded memory.
enum FuzzTarget: String, CaseIterable {
    case manifest, agentConfig = "agent-config", sshsig, notify, envFile = "env-file", allowedSigners = "allowed-signers"

    func run(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        switch self {
        case .manifest:
            _ = ManifestDecoder.decode(text, file: "fuzz.yaml")
        case .agentConfig:
            _ = AgentConfig.decode(text, file: "agent.yaml", hostname: "web-1")
        case .sshsig:
            _ = try? SSHSignature.parse(armored: text)
            _ = try? SSHSignature.parse(blob: bytes)
        case .notify:
            // Timestamp and signature headers, then the body, split at the first two newlines.
            let parts = bytes.split(separator: 0x0A, maxSplits: 2, omittingEmptySubsequences: false)
            let timestamp = parts.count > 0 ? String(decoding: parts[0], as: UTF8.self) : nil
            let signature = parts.count > 1 ? String(decoding: parts[1], as: UTF8.self) : nil
            let body = parts.count > 2 ? Array(parts[2]) : []
            _ = NotifyAuth.verify(body: body, timestamp: timestamp, signature: signature, secret: Array("fuzz-secret".utf8), now: 1_700_000_000)
        case .envFile:
            _ = EnvFile.parse(text)
        case .allowedSigners:
            _ = AllowedSigners.parse(text, file: "allowed_signers")
        }
    }
}
