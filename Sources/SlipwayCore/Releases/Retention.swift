/// Which releases to delete: all but the newest `keep`, never the current one and never the
/// previous good one (the instant rollback target). Failed attempts (`attempts`: releases that
/// failed or never finished their expand) take no place among the `keep`: those newer than the
/// oldest good release kept stay (so a failure can still be looked at), older ones go with it.
public enum Retention {
    public static func releasesToPrune(_ releases: [ReleaseID], current: ReleaseID?, previousGood: ReleaseID?, keep: Int,
                                       attempts: Set<ReleaseID> = []) -> [ReleaseID] {
        let newestFirst = releases.sorted(by: >)
        var kept = Set(newestFirst.filter { !attempts.contains($0) }.prefix(max(1, keep)))
        if let oldest = kept.min() {
            kept.formUnion(attempts.filter { $0 > oldest })
        } else {
            kept.formUnion(newestFirst.prefix(max(1, keep)))
        }
        if let current { kept.insert(current) }
        if let previousGood { kept.insert(previousGood) }
        return newestFirst.filter { !kept.contains($0) }.sorted()
    }

    /// The newest good release older than `current`: where a rollback goes by default.
    public static func previousGood(_ releases: [ObservedRelease], current: ReleaseID?) -> ReleaseID? {
        guard let current else { return nil }
        return releases.filter { $0.id < current && $0.succeeded }.map(\.id).max()
    }
}
