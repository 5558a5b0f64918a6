import Foundation

/// argv and envp for `posix_spawn` and `execve`: NULL-terminated arrays of C strings, alive for
/// the call and freed after it. The one copy of this marshalling (builds, workers, the re-exec).
enum CStringArrays {
    typealias Array = [UnsafeMutablePointer<CChar>?]

    static func with<T>(_ argv: [String], _ environment: [String], _ body: (Array, Array) throws -> T) rethrows -> T {
        let cArgv = argv.map { strdup($0) } + [nil]
        let cEnv = environment.map { strdup($0) } + [nil]
        defer {
            cArgv.forEach { free($0) }
            cEnv.forEach { free($0) }
        }
        return try body(cArgv, cEnv)
    }

    /// `NAME=value` entries, sorted by name (a stable environment block).
    static func entries(_ environment: [String: String]) -> [String] {
        environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
    }
}
