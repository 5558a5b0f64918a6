import Foundation
import SlipwayCore

/// The host-local secret that keys worker generation ids (`state_dir/generation.key`, 32 random
/// bytes, root-only): ids are shown in status and logs, and must reveal nothing of the env.
/// Made on first use, read once per process.
enum GenerationKey {
    private static let cache = Mutex<[String: [UInt8]]>([:])

    static func load(stateDir: String) throws -> [UInt8] {
        if let key = cache.withLock({ $0[stateDir] }) { return key }
        let path = stateDir + "/generation.key"
        var key = FileOps.readFile(path, limit: 1024) ?? []
        if key.count < 32 {
            key = (0..<32).map { _ in UInt8.random(in: 0...255) }
            try FileOps.makeDirectories(stateDir, mode: 0o750)
            try FileOps.writeAtomically(key, to: path, mode: 0o600)
        }
        cache.withLock { $0[stateDir] = key }
        return key
    }
}
