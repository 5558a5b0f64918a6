import Foundation
import SlipwayCore

/// What the supervisor runs for one app, as `slipway status` shows it and as a restarted agent
/// finds it: `state_dir/workers/<app>.json`, rewritten on every change and every memory sample.
public struct WorkerTable: Sendable, Codable, Equatable {
    public var app: String
    public var listen: String?
    /// The release the accepted workers run.
    public var release: ReleaseID?
    public var generation: String?
    /// Set while the app is unhealthy (a crash loop, a failed reload), with the reason.
    public var degraded: String?
    public var workers: [Worker] = []
    public var updatedAt: UTCTime

    public struct Worker: Sendable, Codable, Equatable {
        public enum State: String, Sendable, Codable {
            case starting, ready, draining
            /// Exited unexpectedly; restarted after the backoff.
            case backoff
        }

        public var slot: Int
        public var pid: Int32
        /// /proc start time of the pid, so a reused pid is never mistaken for this worker.
        public var procStartTime: UInt64
        public var release: ReleaseID
        public var generation: String
        public var state: State
        public var startedAt: UTCTime
        public var restarts: Int
        public var rssBytes: UInt64?
        /// The worker's own `STATUS=` message, if it sends one.
        public var status: String?
        /// Its own socket (fd 4, `127.0.0.1:PORT`), where its health is checked.
        public var ownSocket: String?
        /// Its last health check on that socket.
        public var health: WorkerHealth?
    }

    public static func path(stateDir: String, app: String) -> String { "\(stateDir)/workers/\(app).json" }

    public static func load(stateDir: String, app: String) -> WorkerTable? {
        guard let bytes = FileOps.readFile(path(stateDir: stateDir, app: app)) else { return nil }
        return try? JSONDecoder().decode(WorkerTable.self, from: Data(bytes))
    }

    public static func loadAll(stateDir: String) -> [String: WorkerTable] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: stateDir + "/workers")) ?? []
        var result: [String: WorkerTable] = [:]
        for name in names where name.hasSuffix(".json") {
            let app = String(name.dropLast(5))
            if let table = load(stateDir: stateDir, app: app) { result[app] = table }
        }
        return result
    }

    func save(stateDir: String) throws {
        try FileOps.makeDirectories(stateDir + "/workers", mode: 0o750)
        // Not fsynced: it is rewritten on every change and every memory sample, and what it is
        // kept for (status, the orphans a killed agent left) does not outlive a power loss:
        // after one, no worker it names is running.
        try FileOps.writeAtomically(Array(try JSONFiles.encode(self)), to: Self.path(stateDir: stateDir, app: app), mode: 0o640,
                                    durable: false)
    }
}
