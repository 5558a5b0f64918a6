/// A release's name: `<yyyyMMdd'T'HHmmss'Z'>-<sha7>`, in UTC.
///
/// Ids only ever increase: a release made in the same second as another (or after the clock
/// stepped back) takes the next free second. So ids are distinct, and sorting them as text
/// sorts releases in the order they were made; `release.json` keeps the exact creation time.
public struct ReleaseID: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public let timestamp: String
    public let shortSHA: String

    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        let stamp = parts[0], sha = parts[1]
        guard UTCTime(compact: String(stamp)) != nil else { return nil }
        guard sha.count == 7, sha.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else { return nil }
        self.timestamp = String(stamp)
        self.shortSHA = String(sha)
    }

    /// The id for a new release of `sha` made at `time`: later than every id in `existing`.
    public static func next(at time: UTCTime, sha: String, existing: some Sequence<ReleaseID>) -> ReleaseID {
        var second = time.millisecondsSinceEpoch - ((time.millisecondsSinceEpoch % 1000) + 1000) % 1000
        if let latest = existing.max(), let latestTime = UTCTime(compact: latest.timestamp), latestTime.millisecondsSinceEpoch >= second {
            second = latestTime.millisecondsSinceEpoch + 1000
        }
        return ReleaseID("\(UTCTime(millisecondsSinceEpoch: second).compact)-\(sha.prefix(7).lowercased())")!
    }

    public var description: String { "\(timestamp)-\(shortSHA)" }

    public static func < (lhs: ReleaseID, rhs: ReleaseID) -> Bool {
        (lhs.timestamp, lhs.shortSHA) < (rhs.timestamp, rhs.shortSHA)
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let id = ReleaseID(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "invalid release id '\(text)'"))
        }
        self = id
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
