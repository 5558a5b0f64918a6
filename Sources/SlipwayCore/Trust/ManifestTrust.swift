/// Whether the agent may move to the manifests branch's tip: it must be signed by an allowed key,
/// and it must descend from the last commit the agent verified (no going backwards), unless an
/// operator allowed one rewind.
public enum ManifestTrust {
    public enum Decision: Sendable, Equatable {
        case accept(commit: String, consumesRewind: Bool)
        /// Refused; the agent stays on `stayOn` (nil when it has never verified a commit).
        case refuse(commit: String, reason: String, why: String, fingerprint: String?, stayOn: String?)
    }

    /// `descends` is whether `tip` descends from `lastVerified` (true when there is none).
    public static func decide(tip: String, signature: Result<SignatureVerifier.Signer, SignatureVerifier.Failure>,
                              lastVerified: String?, descends: Bool, rewindAllowed: Bool) -> Decision {
        if tip == lastVerified { return .accept(commit: tip, consumesRewind: false) }
        switch signature {
        case .failure(let failure):
            return .refuse(commit: tip, reason: failure.reason, why: failure.description, fingerprint: failure.fingerprint, stayOn: lastVerified)
        case .success(let signer):
            guard let lastVerified, !descends else { return .accept(commit: tip, consumesRewind: false) }
            if rewindAllowed { return .accept(commit: tip, consumesRewind: true) }
            return .refuse(commit: tip, reason: "rewind",
                           why: "the tip is signed (\(signer.key.fingerprint)) but does not descend from \(lastVerified.prefix(12)), the last verified commit: "
                               + "a force-push back to older history is refused; 'slipway trust --allow-rewind' accepts it once",
                           fingerprint: signer.key.fingerprint, stayOn: lastVerified)
        }
    }
}
