import Logging
import SlipwayCore

/// Logs a repeated warning at most once per `interval` for each key (a client address, a
/// listener), with how many were held back, so a flood of refused requests cannot flood the log.
final class RateLimitedLog: Sendable {
    private struct Entry {
        var lastLogged: ContinuousClock.Instant
        var suppressed: Int
    }

    private let logger: Logger
    private let interval: Duration
    private let entries = Mutex<[String: Entry]>([:])
    /// Keys kept at most; a flood from many sources forgets the oldest rather than growing.
    private let maxKeys = 1024

    init(logger: Logger, interval: Duration) {
        self.logger = logger
        self.interval = interval
    }

    func warning(key: String, _ message: @autoclosure () -> String) {
        let now = ContinuousClock.now
        let held: Int? = entries.withLock { entries in
            if var entry = entries[key] {
                guard now - entry.lastLogged >= interval else {
                    entry.suppressed += 1
                    entries[key] = entry
                    return nil
                }
                entries[key] = Entry(lastLogged: now, suppressed: 0)
                return entry.suppressed
            }
            if entries.count >= maxKeys, let oldest = entries.min(by: { $0.value.lastLogged < $1.value.lastLogged }) {
                entries.removeValue(forKey: oldest.key)
            }
            entries[key] = Entry(lastLogged: now, suppressed: 0)
            return 0
        }
        guard let held else { return }
        logger.warning("\(message() + (held > 0 ? " (\(held) more like this in the last \(DurationText.format(interval)))" : ""))")
    }
}
