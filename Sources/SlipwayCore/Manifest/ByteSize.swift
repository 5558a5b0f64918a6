/// Sizes as people write them: `512M`, `1G`, `64K`, `1048576` (binary multiples; `Mi`, `MB`
/// and `MiB` mean the same as `M`).
public enum ByteSize {
    public static func parse(_ text: String) -> UInt64? {
        let digits = text.prefix(while: { $0.isASCII && $0.isNumber })
        guard !digits.isEmpty, let number = UInt64(digits) else { return nil }
        var unit = text.dropFirst(digits.count).uppercased()
        if unit.hasSuffix("IB") { unit.removeLast(2) } else if unit.hasSuffix("B") { unit.removeLast() }
        let shift: UInt64
        switch unit {
        case "": shift = 0
        case "K": shift = 10
        case "M": shift = 20
        case "G": shift = 30
        default: return nil
        }
        let (value, overflow) = number.multipliedReportingOverflow(by: 1 << shift)
        return overflow ? nil : value
    }

    public static func format(_ bytes: UInt64) -> String {
        if bytes >= 1 << 30 { return String(format1(Double(bytes) / Double(1 << 30))) + "G" }
        if bytes >= 1 << 20 { return String(format1(Double(bytes) / Double(1 << 20))) + "M" }
        if bytes >= 1 << 10 { return String(format1(Double(bytes) / Double(1 << 10))) + "K" }
        return "\(bytes)B"
    }

    private static func format1(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        return tenths % 10 == 0 ? "\(tenths / 10)" : "\(tenths / 10).\(tenths % 10)"
    }
}
