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
}
