/// Recognises a worker that died at start because it bound a port itself ("EADDRINUSE",
/// "Address already in use") and says what to do instead: take fd 3.
public enum AddressInUse {
    public static let docs = "docs/workers.md, \"The socket: fd 3\""

    /// The output line that reports the bind failure (the last one naming a port, when one
    /// does: Node also prints `code: 'EADDRINUSE'`), or nil.
    public static func line(in output: [String]) -> String? {
        let matching = output.filter {
            $0.contains("EADDRINUSE") || $0.lowercased().contains("address already in use") || $0.contains("Connection in use")
        }
        return matching.last { port(in: $0) != nil } ?? matching.last
    }

    /// The port a bind-failure line names (`:::3000`, `127.0.0.1:3000`, `tcp :8080: bind`,
    /// `port 9292`, `('0.0.0.0', 8000)`), or nil.
    public static func port(in line: String) -> Int? {
        let scalars = Array(line.unicodeScalars)
        var candidates: [Int] = []
        var index = 0
        while index < scalars.count {
            guard ("0"..."9").contains(scalars[index]) else { index += 1; continue }
            var end = index
            while end < scalars.count, ("0"..."9").contains(scalars[end]) { end += 1 }
            let before = String(String.UnicodeScalarView(scalars[max(0, index - 5)..<index]))
            let partOfAddress = end < scalars.count && scalars[end] == "."
            if before.hasSuffix(":") || before.hasSuffix("port ") || before.hasSuffix("', ") || before.hasSuffix("\", "), !partOfAddress,
               let value = Int(String(String.UnicodeScalarView(scalars[index..<end]))), (1...65535).contains(value) {
                candidates.append(value)
            }
            index = end
        }
        return candidates.last
    }

    /// What to tell the operator about a worker whose `output` ended in a bind failure, or nil
    /// when it did not. `preload` says why a Node app did not get fd 3 by itself, when it did not.
    public static func explanation(output: [String], listen: WorkerListen?, preload: String? = nil) -> String? {
        guard let line = line(in: output) else { return nil }
        let named = port(in: line)
        switch listen {
        case .tcp(_, let port)?:
            let which = named.map { "port \($0)" } ?? "a port"
            var text = "it binds \(which) itself (address already in use), but Slipway already listens on \(listen!) "
                + "and hands that socket to every worker as fd 3: make the app take fd 3 when LISTEN_FDS=1 (\(docs))"
            if let named, named != port { text += "; it binds \(named), not the PORT Slipway sets (\(port))" }
            if let preload { text += "; \(preload)" }
            return text
        case .unix?:
            return "it binds \(named.map { "port \($0)" } ?? "a port") itself (address already in use); Slipway hands its socket "
                + "as fd 3: make the app take fd 3 when LISTEN_FDS=1 (\(docs))"
        case nil:
            let which = named.map { "port \($0)" } ?? "its port"
            let example = named.map { "127.0.0.1:\($0)" } ?? "127.0.0.1:3000"
            return "\(which) is already in use: the app binds it itself, so only one process at a time can (a second worker, "
                + "or the worker it replaces); set 'backend.listen: \(example)' and make the app take fd 3 (\(docs))"
        }
    }
}
