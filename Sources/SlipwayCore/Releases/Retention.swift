/// Which releases to delete: all but the newest `keep`, never the current one and never the
/// previous good one (the instant rollback target).
public enum Retention {
    public static func releasesToPrune(_ releases: [ReleaseID], current: ReleaseID?, previousGood: ReleaseID?, keep: Int) -> [ReleaseID] {
        let newestFirst = releases.sorted(by: >)
        var kept = Set(newestFirst.prefix(max(1, keep)))
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
