import ArgumentParser
import Foundation
import Slipway
import SlipwayCore

struct ReleasesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "releases",
        abstract: "List an app's kept releases, newest first; '*' marks current.",
        discussion: """
        SCHEMA says how far the release's migrate steps went on this host: 'expanded' (its expand \
        ran, or its check passed), 'contracted' (its contract ran: 'slipway rollback' refuses to \
        go back past it without --force), '-' (no migrate steps).
        """
    )

    @Argument(help: "The app's name.")
    var app: String

    @OptionGroup var options: ConfigOptions

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    struct Row: Codable {
        var id: ReleaseID
        var sha: String?
        var createdAt: UTCTime?
        var result: String
        var current: Bool
        var expandedAt: UTCTime?
        var contractedAt: UTCTime?
        var failure: String?
    }

    func run() async throws {
        try await Self.reporting {
            let config = try options.load()
            let name = try AppName.argument(app)
            let store = ReleaseStore(layout: AppLayout(appsRoot: config.appsRoot, app: name))
            let current = store.current()
            let rows = store.releaseIDs().reversed().map { id in
                let record = store.record(id)
                return Row(id: id, sha: record?.source.sha, createdAt: record?.createdAt,
                           result: record?.result.rawValue ?? "unreadable record", current: id == current,
                           expandedAt: record?.expandedAt, contractedAt: record?.contractedAt, failure: record?.failure)
            }
            if json {
                print(String(decoding: try JSONFiles.encode(rows), as: UTF8.self))
                return
            }
            guard !rows.isEmpty else {
                print("\(name) has no releases on this host")
                return
            }
            print("  RELEASE                     SHA      CREATED                   SCHEMA      RESULT")
            for row in rows {
                let id = row.id.description.padding(toLength: 26, withPad: " ", startingAt: 0)
                let sha = (row.sha.map { String($0.prefix(7)) } ?? "?").padding(toLength: 7, withPad: " ", startingAt: 0)
                let created = (row.createdAt?.iso8601 ?? "?").padding(toLength: 24, withPad: " ", startingAt: 0)
                let schema = (row.contractedAt != nil ? "contracted" : row.expandedAt != nil ? "expanded" : "-")
                    .padding(toLength: 10, withPad: " ", startingAt: 0)
                let failure = row.failure.map { ": " + ($0.split(separator: "\n").first.map(String.init) ?? "") } ?? ""
                print("\(row.current ? "*" : " ") \(id)  \(sha)  \(created)  \(schema)  \(row.result)\(failure)")
            }
        }
    }
}
