/// A moment in UTC, as whole milliseconds since the Unix epoch. A plain value so the core can
/// name releases and stamp records without reading a clock: the shell passes the time in.
public struct UTCTime: Sendable, Hashable, Comparable, Codable {
    public var millisecondsSinceEpoch: Int64

    public init(millisecondsSinceEpoch: Int64) {
        self.millisecondsSinceEpoch = millisecondsSinceEpoch
    }

    public static func < (lhs: UTCTime, rhs: UTCTime) -> Bool { lhs.millisecondsSinceEpoch < rhs.millisecondsSinceEpoch }

    /// `20261125T150326Z`, the form release ids start with.
    public var compact: String {
        let f = fields
        return "\(pad(f.year, 4))\(pad(f.month))\(pad(f.day))T\(pad(f.hour))\(pad(f.minute))\(pad(f.second))Z"
    }

    /// `2026-11-25T15:03:26.120Z`, ISO 8601.
    public var iso8601: String {
        let f = fields
        return "\(pad(f.year, 4))-\(pad(f.month))-\(pad(f.day))T\(pad(f.hour)):\(pad(f.minute)):\(pad(f.second)).\(pad(f.millisecond, 3))Z"
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let time = UTCTime(iso8601: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not an ISO 8601 UTC time: \(text)"))
        }
        self = time
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(iso8601)
    }

    /// Parses the `compact` form (`20261125T150326Z`), checking every field's range. Read
    /// straight from the bytes: every release id of every app is parsed on every pass.
    public init?(compact text: String) {
        let bytes = Array(text.utf8)
        guard bytes.count == 16, bytes[8] == UInt8(ascii: "T"), bytes[15] == UInt8(ascii: "Z") else { return nil }
        func number(_ from: Int, _ count: Int) -> Int64? {
            var value: Int64 = 0
            for byte in bytes[from..<(from + count)] {
                guard (0x30...0x39).contains(byte) else { return nil }
                value = value * 10 + Int64(byte - 0x30)
            }
            return value
        }
        guard let year = number(0, 4), let month = number(4, 2), let day = number(6, 2),
              let hour = number(9, 2), let minute = number(11, 2), let second = number(13, 2),
              (1...12).contains(month), day >= 1, hour < 24, minute < 60, second < 60 else { return nil }
        let days = Self.daysFromCivil(year: year, month: month, day: day)
        // A day past its month's end (30 February) lands on another date: refused.
        guard Self.civilFromDays(days) == (year, month, day) else { return nil }
        self.init(millisecondsSinceEpoch: (days * 86_400 + hour * 3600 + minute * 60 + second) * 1000)
    }

    /// Parses what `iso8601` writes (milliseconds optional).
    public init?(iso8601 text: String) {
        let digits = text.filter(\.isNumber)
        guard text.hasSuffix("Z"), digits.count == 14 || digits.count == 17 else { return nil }
        let n = digits.map { Int64(String($0))! }
        func number(_ from: Int, _ count: Int) -> Int64 { n[from..<(from + count)].reduce(0) { $0 * 10 + $1 } }
        let days = Self.daysFromCivil(year: number(0, 4), month: number(4, 2), day: number(6, 2))
        let seconds = days * 86_400 + number(8, 2) * 3600 + number(10, 2) * 60 + number(12, 2)
        millisecondsSinceEpoch = seconds * 1000 + (digits.count == 17 ? number(14, 3) : 0)
    }

    private var fields: (year: Int64, month: Int64, day: Int64, hour: Int64, minute: Int64, second: Int64, millisecond: Int64) {
        let ms = millisecondsSinceEpoch
        let seconds = ms >= 0 ? ms / 1000 : (ms - 999) / 1000
        let millisecond = ms - seconds * 1000
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        let (year, month, day) = Self.civilFromDays(days)
        return (year, month, day, secondOfDay / 3600, secondOfDay % 3600 / 60, secondOfDay % 60, millisecond)
    }

    // Howard Hinnant's days_from_civil / civil_from_days.
    static func civilFromDays(_ z: Int64) -> (Int64, Int64, Int64) {
        let z = z + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = month > 2 ? month - 3 : month + 9
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}

private func pad(_ value: Int64, _ width: Int = 2) -> String {
    let text = String(value)
    return String(repeating: "0", count: max(0, width - text.count)) + text
}
