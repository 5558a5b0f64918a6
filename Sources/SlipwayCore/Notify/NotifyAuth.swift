import Crypto

/// How push notifications are signed: `X-Slipway-Timestamp: <unix seconds>` and
/// `X-Slipway-Signature: sha256=<hex>`, the HMAC-SHA256 of `"<timestamp>.<raw body>"` under a
/// shared secret. The timestamp binds the signature to a moment, so an old request cannot be
/// replayed after the window; within it, the agent remembers signatures it has seen.
public enum NotifyAuth {
    public static let timestampHeader = "X-Slipway-Timestamp"
    public static let signatureHeader = "X-Slipway-Signature"
    public static let window: Int64 = 300

    public enum Verdict: Sendable, Equatable {
        case valid
        case missing
        case malformed
        case badSignature
        case stale(skewSeconds: Int64)

        /// A short word for logs and the `outcome` metric label.
        public var outcome: String {
            switch self {
            case .valid: return "accepted"
            case .missing: return "unsigned"
            case .malformed: return "malformed-signature"
            case .badSignature: return "bad-signature"
            case .stale: return "stale"
            }
        }
    }

    /// The header value for `body` at `timestamp`.
    public static func signature(body: [UInt8], timestamp: Int64, secret: [UInt8]) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array("\(timestamp).".utf8) + body, using: SymmetricKey(data: secret))
        return "sha256=" + Hex.encode(mac)
    }

    /// Checks a request's headers against its raw body, in constant time for the MAC.
    public static func verify(body: [UInt8], timestamp: String?, signature: String?, secret: [UInt8], now: Int64) -> Verdict {
        guard let timestamp, let signature else { return .missing }
        guard let seconds = Int64(timestamp), signature.hasPrefix("sha256="), let mac = hexBytes(signature.dropFirst(7)), mac.count == 32 else {
            return .malformed
        }
        guard HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Array("\(timestamp).".utf8) + body,
                                                      using: SymmetricKey(data: secret)) else {
            return .badSignature
        }
        let skew = now - seconds
        guard abs(skew) <= window else { return .stale(skewSeconds: skew) }
        return .valid
    }

    static func hexBytes(_ text: Substring) -> [UInt8]? {
        guard text.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            guard let byte = UInt8(text[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        return bytes
    }
}
