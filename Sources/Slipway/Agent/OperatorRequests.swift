import Foundation
import SlipwayCore

/// Requests from `slipway deploy APP`, `slipway rollback APP` and `slipway reload APP`, queued as files under
/// `state_dir/requests/` so they survive a restart and reach a running agent (woken by SIGHUP)
/// or the next offline pass alike. Only the lock holder acts on them.
public struct OperatorRequests: Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        case deploy, rollback, reload
    }

    public struct Request: Sendable, Equatable {
        public var app: AppName
        public var kind: Kind
        /// For a rollback, the release to go to; nil for the previous good one.
        public var argument: String?
        /// For a rollback: go back past a contract step (`slipway rollback --force`).
        public var force: Bool

        public init(app: AppName, kind: Kind, argument: String?, force: Bool = false) {
            self.app = app
            self.kind = kind
            self.argument = argument
            self.force = force
        }
    }

    public let directory: String

    public init(stateDir: String) {
        directory = stateDir + "/requests"
    }

    public func submit(_ request: Request) throws {
        try FileOps.makeDirectories(directory, mode: 0o750)
        // Line 1: the argument (may be empty); a later line "force" sets the flag.
        let text = (request.argument ?? "") + (request.force ? "\nforce" : "")
        try FileOps.writeAtomically(Array(text.utf8), to: path(request.app, request.kind))
    }

    public func pending() -> [Request] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.sorted().compactMap { name in
            let parts = name.split(separator: ".")
            guard parts.count == 2, let app = AppName(String(parts[0])), let kind = Kind(rawValue: String(parts[1])) else { return nil }
            let text = FileOps.readFile(directory + "/" + name).map { String(decoding: $0, as: UTF8.self) } ?? ""
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let argument = lines.first ?? ""
            return Request(app: app, kind: kind, argument: argument.isEmpty ? nil : argument, force: lines.dropFirst().contains("force"))
        }
    }

    public func isPending(_ app: AppName, _ kind: Kind) -> Bool {
        FileOps.exists(path(app, kind))
    }

    public func done(_ request: Request) {
        unlink(path(request.app, request.kind))
    }

    private func path(_ app: AppName, _ kind: Kind) -> String {
        "\(directory)/\(app.value).\(kind.rawValue)"
    }

    /// A request as the CLI sends it over the socket: JSON `{"app", "kind", "argument"?, "force"?}`
    /// (`kind` one of deploy, rollback, reload), or `{"kind": "allow-removals", "argument": COMMIT}`.
    public struct Wire: Codable, Sendable {
        public var app: String?
        public var kind: String
        public var argument: String?
        public var force: Bool?

        public init(app: String?, kind: String, argument: String? = nil, force: Bool? = nil) {
            self.app = app
            self.kind = kind
            self.argument = argument
            self.force = force
        }
    }

    public struct Refusal: Error, CustomStringConvertible {
        public var description: String
    }

    /// Validates a request received over the socket and queues it as the CLI would have.
    public static func queue(body: [UInt8], stateDir: String) -> Result<String, Refusal> {
        guard let wire = try? JSONDecoder().decode(Wire.self, from: Data(body)) else {
            return .failure(Refusal(description: "the body must be JSON {app, kind, argument, force}"))
        }
        if wire.kind == "allow-removals" {
            let commit = (wire.argument ?? "").lowercased()
            guard RemovalPolicy.isCommitPrefix(commit) else {
                return .failure(Refusal(description: "allow-removals needs a commit id (7 to 40 hex digits)"))
            }
            do {
                try Reconciler.allowRemovals(of: commit, stateDir: stateDir)
            } catch {
                return .failure(Refusal(description: "cannot queue the request: \(error)"))
            }
            return .success("allow removals of \(commit)")
        }
        guard let kind = Kind(rawValue: wire.kind), let app = wire.app.flatMap(AppName.init) else {
            return .failure(Refusal(description: "unknown request: give a valid app and a kind of deploy, rollback or reload"))
        }
        if let argument = wire.argument, argument.count > 64 || argument.contains("\n") {
            return .failure(Refusal(description: "the argument is not a release id"))
        }
        do {
            try OperatorRequests(stateDir: stateDir).submit(Request(app: app, kind: kind, argument: wire.argument, force: wire.force ?? false))
        } catch {
            return .failure(Refusal(description: "cannot queue the request: \(error)"))
        }
        return .success("\(kind.rawValue) \(app)")
    }

    /// Queues `request` here when this process may write the state directory (root), or else
    /// through the running agent's socket (a member of the slipway group).
    public static func send(_ request: Wire, config: AgentConfig) async throws {
        let directory = config.stateDir + "/requests"
        let writable = access(FileOps.exists(directory) ? directory : config.stateDir, W_OK) == 0
        if writable {
            _ = try queue(body: Array(try JSONEncoder().encode(request)), stateDir: config.stateDir).get()
            return
        }
        let response = try await AgentClient(endpoint: .unix(path: config.socketPath))
            .request(.POST, "/v1/requests", headers: [("Content-Type", "application/json")], body: Array(try JSONEncoder().encode(request)))
        guard response.status == 202 else {
            throw Refusal(description: "the agent refused the request (\(response.status)): \(response.body)")
        }
    }
}
