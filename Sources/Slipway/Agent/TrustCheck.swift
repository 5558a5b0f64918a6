import Foundation
import Logging
import SlipwayCore

/// `slipway trust --check COMMIT`: the verdict the agent would reach on one manifests commit,
/// and how long verifying it took, without changing any state.
public enum TrustCheck {
    public struct Report {
        public var accepted: Bool
        public var text: String
    }

    public static func run(commit: String, config: AgentConfig) throws -> Report {
        guard let verification = config.manifests.verify else { return Report(accepted: true, text: "commits are not verified") }
        let repo = try GitRepository.openMirror(at: config.stateDir + "/mirrors/manifests.git")
        guard let sha = try repo.referenceTarget(commit) else {
            return Report(accepted: false, text: "\(commit) is not in the manifests mirror (has the agent fetched it?)")
        }
        let gate = TrustGate(verification: verification, stateDir: config.stateDir, logger: Logger(label: "slipway.trust"))
        let signers = try gate.allowedSigners()
        let clock = ContinuousClock()
        let started = clock.now
        let (armored, payload) = try repo.signature(ofCommit: sha)
        let verdict = SignatureVerifier.verify(armored: armored, payload: payload, allowed: signers)
        let elapsed = clock.now - started
        let micros = elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000
        let last = StateFile(stateDir: config.stateDir).load().trust?.lastVerifiedCommit
        let descends = last.map { repo.isDescendant(sha, of: $0) } ?? true
        switch verdict {
        case .success(let signer):
            let history = descends ? "" : "; but it does not descend from the last verified commit \(last!.prefix(12)), so the agent refuses it as a rewind"
            return Report(accepted: descends, text: "\(sha): signed by \(signer.principals) \(signer.key.fingerprint) (verified in \(micros) µs)\(history)")
        case .failure(let failure):
            return Report(accepted: false, text: "\(sha): refused (\(failure.reason)): \(failure.description) (checked in \(micros) µs)")
        }
    }
}
