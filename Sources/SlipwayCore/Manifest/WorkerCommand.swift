/// Checks that `backend.command` is one program with its arguments. Slipway runs it as
/// `exec COMMAND` under `/bin/sh`, so the worker's pid is the program's own: `LISTEN_PID`
/// holds, and the stop signal reaches the program, not a shell waiting on it.
public enum WorkerCommand {
    /// The first shell operator outside quotes that would make the command more than one
    /// program (`;`, `&`, `|`, `&&`, `||`, a newline), or nil when there is none.
    public static func compoundOperator(in command: String) -> String? {
        var single = false, double = false, escaped = false
        let chars = Array(command)
        var index = 0
        while index < chars.count {
            let c = chars[index]
            defer { index += 1 }
            if escaped { escaped = false; continue }
            if single { if c == "'" { single = false }; continue }
            if c == "\\" { escaped = true; continue }
            if double { if c == "\"" { double = false }; continue }
            switch c {
            case "'": single = true
            case "\"": double = true
            case "\n": return "a newline"
            case ";": return "';'"
            case "&", "|":
                let twice = index + 1 < chars.count && chars[index + 1] == c
                return twice ? "'\(c)\(c)'" : "'\(c)'"
            default: break
            }
        }
        return nil
    }

    /// The command's words before any quote: enough to name the program and see an assignment.
    private static func leadingWords(_ command: String) -> [Substring] {
        var words = command.split(whereSeparator: { $0 == " " || $0 == "\t" })
        if words.first == "exec" { words.removeFirst() }
        return words
    }

    /// A `NAME=value` the command starts with (`PORT=4000 node app.js`), or nil. Such a
    /// variable belongs in the manifest's `env`, where every worker and status can see it.
    public static func leadingAssignment(in command: String) -> String? {
        guard let first = leadingWords(command).first, let equals = first.firstIndex(of: "=") else { return nil }
        let name = first[..<equals]
        let isName = !name.isEmpty && name.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_") }
            && !("0"..."9").contains(name.first!)
        return isName ? String(first) : nil
    }

    /// The program's file name (`node` for `exec /usr/bin/node server.js`), or nil.
    public static func programName(of command: String) -> String? {
        guard let first = leadingWords(command).first, !first.contains("\""), !first.contains("'") else { return nil }
        return first.split(separator: "/").last.map(String.init)
    }

    /// The command as `/bin/sh -c` gets it: `LISTEN_PID` set to the shell's pid, which `exec`
    /// hands to the program.
    public static func shellLine(_ command: String) -> String {
        var program = Substring(command).drop(while: { $0 == " " || $0 == "\t" })
        if program.hasPrefix("exec ") { program = program.dropFirst(5) }
        return "LISTEN_PID=$$; export LISTEN_PID; exec \(program)"
    }
}

/// A Unix account name as `useradd` accepts it by default; root is never an app's user.
public enum AccountName {
    public static func isValid(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...32).contains(bytes.count) else { return false }
        func lower(_ b: UInt8) -> Bool { (0x61...0x7A).contains(b) || b == 0x5F }
        func rest(_ b: UInt8) -> Bool { lower(b) || (0x30...0x39).contains(b) || b == 0x2D }
        return lower(bytes[0]) && bytes.dropFirst().allSatisfy(rest)
    }
}
