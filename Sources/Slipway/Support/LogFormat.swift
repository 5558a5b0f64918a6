import Foundation
import Logging
import SlipwayCore

/// Log lines an operator can read and grep at 3 a.m.:
/// `2026-11-25T15:03:26.120Z info  platform build: the backend build exited with status 1 key=value`.
public struct SlipwayLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    private let label: String

    public init(label: String) {
        self.label = label
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let app = merged.removeValue(forKey: "app").map { "\($0) " } ?? ""
        let stage = merged.removeValue(forKey: "stage").map { "\($0): " } ?? ""
        let rest = merged.sorted { $0.key < $1.key }.map { " \($0.key)=\($0.value)" }.joined()
        let level = event.level.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)
        let line = "\(UTCTime.now.iso8601) \(level)\(app)\(stage)\(event.message)\(rest)\n"
        FileHandle.standardError.write(Data(line.utf8))
    }

    /// Installs this handler for the process; call once at start-up.
    public static func bootstrap(level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            var handler = SlipwayLogHandler(label: label)
            handler.logLevel = level
            return handler
        }
    }
}
