import Crypto
import Hummingbird
import SlipwayCore

/// Who may read `/v1/status` over TCP: nobody, unless `api.token_file` names a token, and then
/// only a request that carries it as `Authorization: Bearer TOKEN`. The unix socket (the CLI's
/// path, mode 0660, group slipway) needs no token.
enum StatusAccess {
    /// Nil when the request may read status; otherwise the response to send (404 or 401).
    static func refusal(for request: Request, tokenFile: String?) -> Response? {
        guard let tokenFile else {
            return NotifyEndpoint.json(.notFound, ["error": "status is served on the agent's unix socket only; set api.token_file to open it on TCP"])
        }
        guard let token = FileOps.readFile(tokenFile).map(NotifyEndpoint.trimmed), token.count >= 16 else {
            return NotifyEndpoint.json(.unauthorized, ["error": "the agent cannot read a token of at least 16 bytes from api.token_file"])
        }
        let presented = request.headers[.authorization].flatMap { value -> [UInt8]? in
            guard value.hasPrefix("Bearer ") else { return nil }
            return Array(value.dropFirst("Bearer ".count).utf8)
        }
        guard let presented, matches(presented, token) else {
            var response = NotifyEndpoint.json(.unauthorized, ["error": "a bearer token is required (Authorization: Bearer …)"])
            response.headers[.wwwAuthenticate] = "Bearer realm=\"slipway\""
            return response
        }
        return nil
    }

    /// Constant-time comparison through HMAC digests (the lengths leak nothing either).
    static func matches(_ presented: [UInt8], _ token: [UInt8]) -> Bool {
        let key = SymmetricKey(size: .bits256)
        let a = HMAC<SHA256>.authenticationCode(for: presented, using: key)
        let b = HMAC<SHA256>.authenticationCode(for: token, using: key)
        return a == b
    }
}
