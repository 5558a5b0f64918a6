/// Lowercase hex, two digits a byte: how fingerprints, generation ids, mirror names and
/// notification signatures are written.
public enum Hex {
    public static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var text = ""
        for byte in bytes {
            let hex = String(byte, radix: 16)
            text += byte < 16 ? "0" + hex : hex
        }
        return text
    }
}
