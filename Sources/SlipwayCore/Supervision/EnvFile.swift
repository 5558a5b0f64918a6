/// Host-local variables for an app's workers (`backend.env_file`), in the format of systemd's
/// `EnvironmentFile=`: `NAME=value` lines, `#` comments, optional `export `, values optionally
/// in single or double quotes. A bad line is an error with its line number, never skipped.
public enum EnvFile {
    public struct Problem: Error, Equatable, CustomStringConvertible {
        public var line: Int
        public var message: String
        public var description: String { "line \(line): \(message)" }
    }

    public static func parse(_ text: String) -> Result<[Manifest.EnvVar], Problem> {
        var values: [String: String] = [:]
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = Substring(raw.hasSuffix("\r") ? raw.dropLast() : raw)
            line = line.drop(while: { $0 == " " || $0 == "\t" })
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = line.dropFirst(7).drop(while: { $0 == " " }) }
            guard let equals = line.firstIndex(of: "=") else {
                return .failure(Problem(line: index + 1, message: "expected NAME=value"))
            }
            let name = String(line[..<equals]).trimmingWhitespace()
            guard EnvName.isValid(name) else {
                // The text is not echoed: a malformed line of a secrets file may be half a secret.
                return .failure(Problem(line: index + 1, message: "the name before '=' is not a valid variable name (letters, digits and _, not starting with a digit)"))
            }
            guard !EnvName.isReserved(name) else {
                return .failure(Problem(line: index + 1, message: "'\(name)' is set by Slipway itself"))
            }
            var value = String(line[line.index(after: equals)...]).trimmingWhitespace()
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
                if first == "\"" { value = unescape(value) }
            }
            values[name] = value
        }
        return .success(values.map { Manifest.EnvVar(name: $0.key, value: $0.value) }.sorted { $0.name < $1.name })
    }

    private static func unescape(_ text: String) -> String {
        var result = "", escaped = false
        for c in text {
            if escaped {
                switch c {
                case "n": result.append("\n")
                case "t": result.append("\t")
                default: result.append(c)
                }
                escaped = false
            } else if c == "\\" {
                escaped = true
            } else {
                result.append(c)
            }
        }
        return result
    }
}
