import Foundation
import Logging
import SlipwayCore

/// What the agent knows about the manifests branch's trust, kept in the state file.
public struct TrustStatus: Sendable, Codable, Equatable {
    public var verified: Bool
    public var lastVerifiedCommit: String?
    public var lastVerifiedSigner: String?
    public var refused: Refusal?

    public struct Refusal: Sendable, Codable, Equatable {
        public var commit: String
        public var reason: String
        public var message: String
        public var fingerprint: String?
        public var at: UTCTime
    }
}

/// Where the one-time rewind allowance lives, for the CLI.
public enum TrustGateFiles {
    public static func rewind(_ config: AgentConfig) -> String { TrustGate.rewindPath(stateDir: config.stateDir) }
}

/// Applies `manifests.verify`: decides which manifests commit the agent may act on, and whether
/// an app's source commit is signed. The allowed signers file is read on every pass.
struct TrustGate {
    let verification: AgentConfig.Verification
    let stateDir: String
    let logger: Logger

    struct Unusable: Error, CustomStringConvertible {
        var description: String
    }

    /// `slipway trust --allow-rewind` leaves this file; the next accepted rewind removes it.
    static func rewindPath(stateDir: String) -> String { stateDir + "/allow-rewind" }

    func allowedSigners() throws -> AllowedSigners {
        let path = verification.allowedSigners
        guard let bytes = FileOps.readFile(path) else {
            throw Unusable(description: "cannot read manifests.verify.allowed_signers \(path): \(String(cString: strerror(errno))); nothing new is deployed until it is fixed")
        }
        switch AllowedSigners.parse(String(decoding: bytes, as: UTF8.self), file: path) {
        case .success(let signers) where signers.entries.isEmpty:
            throw Unusable(description: "\(path) lists no keys; nothing can be verified, so nothing new is deployed")
        case .success(let signers):
            return signers
        case .failure(let diagnostics):
            throw Unusable(description: "\(path) is malformed, so nothing new is deployed:\n\(diagnostics)")
        }
    }

    /// The commit to read manifests from: the tip when it may be trusted, else the last verified one.
    /// `signers` is this pass's reading of the allowed signers file.
    func commitToUse(tip: String, repo: GitRepository, signers: AllowedSigners, status: inout TrustStatus) throws -> String {
        let (armored, payload) = try repo.signature(ofCommit: tip)
        let signature = SignatureVerifier.verify(armored: armored, payload: payload, allowed: signers)
        let last = status.lastVerifiedCommit
        let rewindPath = Self.rewindPath(stateDir: stateDir)
        let decision = ManifestTrust.decide(tip: tip, signature: signature, lastVerified: last,
                                            descends: last.map { repo.isDescendant(tip, of: $0) } ?? true,
                                            rewindAllowed: FileOps.exists(rewindPath))
        switch decision {
        case .accept(let commit, let consumesRewind):
            if consumesRewind {
                unlink(rewindPath)
                logger.warning("accepted a rewind of the manifests branch to \(commit.prefix(12)), as an operator allowed once")
            }
            if commit != last, case .success(let signer) = signature {
                logger.info("manifests commit \(commit.prefix(12)) verified", metadata: ["signer": "\(signer.principals) \(signer.key.fingerprint)"])
                status.lastVerifiedSigner = "\(signer.principals) \(signer.key.fingerprint)"
            }
            status.lastVerifiedCommit = commit
            status.refused = nil
            return commit
        case .refuse(let commit, let reason, let why, let fingerprint, let stayOn):
            if status.refused?.commit != commit || status.refused?.reason != reason {
                logger.error("refusing manifests commit \(commit.prefix(12)): \(why)", metadata: ["reason": "\(reason)"])
            }
            status.refused = .init(commit: commit, reason: reason, message: why, fingerprint: fingerprint, at: .now)
            guard let stayOn else {
                throw Unusable(description: "refusing manifests commit \(commit.prefix(12)): \(why); no commit has been verified yet, so nothing is deployed")
            }
            return stayOn
        }
    }

    /// With `sources: true`: nil when the app's source commit is signed by an allowed key, else why not.
    func sourceProblem(sha: String, repo: GitRepository, signers: AllowedSigners) -> String? {
        guard verification.sources else { return nil }
        do {
            let (armored, payload) = try repo.signature(ofCommit: sha)
            if case .failure(let failure) = SignatureVerifier.verify(armored: armored, payload: payload, allowed: signers) {
                return "source commit \(sha.prefix(12)) refused: \(failure.description)"
            }
            return nil
        } catch {
            return "source commit \(sha.prefix(12)) could not be verified: \(error)"
        }
    }
}
