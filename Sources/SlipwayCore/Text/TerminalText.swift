/// Text from apps (a worker's `STATUS=`, its log lines, build output) made safe to print on an
/// operator's terminal: control characters are shown as escapes instead of being obeyed, so an
/// app cannot retitle, clear or rewrite the screen of whoever runs `slipway status` or `logs`.
public enum TerminalText {
    /// Escapes C0 controls (but tab), DEL and the C1 range as `\e`, `\a`, `\xNN` or `\u{NN}`;
    /// newlines are kept only when `keepNewlines` (multi-line output such as a build log).
    public static func escaped(_ text: String, keepNewlines: Bool = false) -> String {
        guard text.unicodeScalars.contains(where: { needsEscape($0, keepNewlines: keepNewlines) }) else { return text }
        var result = ""
        result.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            guard needsEscape(scalar, keepNewlines: keepNewlines) else {
                result.unicodeScalars.append(scalar)
                continue
            }
            switch scalar.value {
            case 0x1B: result += "\\e"
            case 0x07: result += "\\a"
            case 0x0D: result += "\\r"
            case 0x0A: result += "\\n"
            case 0x08: result += "\\b"
            case 0x80...0x9F: result += "\\u{\(hex(scalar.value))}"
            default: result += "\\x\(hex(scalar.value))"
            }
        }
        return result
    }

    static func needsEscape(_ scalar: Unicode.Scalar, keepNewlines: Bool) -> Bool {
        switch scalar.value {
        case 0x09: return false
        case 0x0A: return !keepNewlines
        case 0x00...0x1F, 0x7F, 0x80...0x9F: return true
        default: return false
        }
    }

    private static func hex(_ value: UInt32) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(value >> 4) & 0xF], digits[Int(value) & 0xF]])
    }
}
