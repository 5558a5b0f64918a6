import Foundation
import SlipwayCore

/// What a re-executing agent hands its next image (issue 19): every worker it runs, by slot,
/// with the fds the new image keeps using — the app's listening socket, each worker's own
/// socket, notify socket and output pipes — by number. Those fds are the only ones left open
/// across `execve`; the record itself is a file in the state dir named by `SLIPWAY_HANDOVER`.
/// Versioned: an image refuses a record whose version it does not know (and the old image
/// comes back, see `Reexec`).
public struct HandoverRecord: Sendable, Codable, Equatable {
    /// The record format this image writes and reads.
    public static let currentVersion = 1

    public var version: Int
    /// When SIGUSR2 arrived (Unix time, seconds), so the new image can tell how long it took.
    public var requestedAt: Double
    /// When the agent process first started, before any re-exec.
    public var processStartedAt: UTCTime
    /// Re-execs this process has done, this one included, and how many of them failed.
    public var reexecs: Int
    public var failedReexecs: Int
    /// The TCP port the HTTP API was bound to (`listen: host:0` picks one): the new image binds
    /// the same port again, so clients and `http.addr` stay right. The API itself is rebound,
    /// not handed over: it is back as soon as the new image starts its services.
    public var apiPort: Int?
    public var apps: [App]
    /// The old image's steps so far; the new image adds its own.
    public var timeline: ReexecTimeline?

    public struct App: Sendable, Codable, Equatable {
        public var app: String
        public var listener: Listener?
        public var degraded: String?
        public var workers: [Worker]
        /// Slots whose worker had exited and waits out its restart backoff: no process, no fd,
        /// only its place in the crash loop, which the new image's monitor carries on.
        public var backoff: [Backoff]? = nil
    }

    public struct Backoff: Sendable, Codable, Equatable {
        public var slot: Int
        /// The exited worker's (no longer a process).
        public var pid: Int32
        public var generation: String
        public var release: ReleaseID
        public var startedAt: UTCTime
        public var uptimeSeconds: Double
        /// How it ended: an exit status, or the signal that killed it.
        public var exitStatus: Int32?
        public var signal: Int32?
        public var restarts: Int
        /// Seconds from the handover to its restart.
        public var restartInSeconds: Double
    }

    public struct Listener: Sendable, Codable, Equatable {
        public var fd: Int32
        /// `tcp` with host and port, or `unix` with the path relative to the app's directory.
        public var host: String?
        public var port: Int?
        public var unix: String?
        /// A unix socket's file.
        public var path: String?
    }

    public struct Worker: Sendable, Codable, Equatable {
        public var slot: Int
        public var pid: Int32
        public var procStartTime: UInt64
        public var generation: String
        public var release: ReleaseID
        public var startedAt: UTCTime
        /// Its uptime at the handover: the new image's clock starts from there.
        public var uptimeSeconds: Double
        public var ready: Bool
        public var status: String?
        public var restarts: Int
        public var stdoutFD: Int32
        public var stderrFD: Int32
        public var notifyFD: Int32?
        public var notifyPath: String?
        public var ownSocketFD: Int32?
        public var ownSocketPort: Int?
        /// Its cgroup (issue 16), ended when it exits.
        public var containment: String?
    }

    /// Every fd the record names: exactly these stay open across `execve`.
    public var fds: [Int32] {
        apps.flatMap { app in
            [app.listener?.fd].compactMap { $0 }
                + app.workers.flatMap { [$0.stdoutFD, $0.stderrFD, $0.notifyFD, $0.ownSocketFD].compactMap { $0 } }
        }
    }

    public var workerCount: Int { apps.reduce(0) { $0 + $1.workers.count } }

    public static func path(stateDir: String) -> String { stateDir + "/handover.json" }

    func save(stateDir: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        try FileOps.writeAtomically(Array(try encoder.encode(self)), to: Self.path(stateDir: stateDir), mode: 0o600,
                                     durable: false)
    }

    /// Reads the record at `path`; throws when it is missing, unreadable or of an unknown version.
    static func load(path: String) throws -> HandoverRecord {
        guard let bytes = FileOps.readFile(path, limit: 16 << 20) else {
            throw HandoverError("cannot read the handover record \(path)")
        }
        struct Head: Decodable { var version: Int }
        let head: Head
        do {
            head = try JSONDecoder().decode(Head.self, from: Data(bytes))
        } catch {
            throw HandoverError("the handover record \(path) is not a record: \(error)")
        }
        guard head.version == currentVersion else {
            throw HandoverError("the handover record \(path) is version \(head.version); this image reads version \(currentVersion)")
        }
        do {
            return try JSONDecoder().decode(HandoverRecord.self, from: Data(bytes))
        } catch {
            throw HandoverError("the handover record \(path) is damaged: \(error)")
        }
    }
}

/// Why a handover could not be written or taken over.
public struct HandoverError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension HandoverRecord.Listener {
    init(_ socket: ListeningSocket) {
        fd = socket.fd
        path = socket.path
        switch socket.address {
        case .tcp(let host, let port):
            self.host = host
            self.port = port
        case .unix(let relative):
            unix = relative.value
        }
    }

    var address: WorkerListen? {
        if let host, let port { return .tcp(host: host, port: port) }
        return unix.flatMap { RelativePath($0) }.map { .unix($0) }
    }
}
