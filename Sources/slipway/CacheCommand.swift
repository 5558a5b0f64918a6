import ArgumentParser
import Foundation
import Slipway
import SlipwayCore

struct CacheCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache",
        abstract: "Manage the build caches an app keeps between releases.",
        subcommands: [Clear.self]
    )

    struct Clear: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "clear",
            abstract: "Empty an app's build home (HOME, npm, pip and Go caches of its builds and migrate steps).",
            discussion: """
            Builds and migrate steps run with HOME in <apps_root>/<app>/.slipway/home, where npm, pip \
            and Go keep their caches from one release to the next. This removes that directory; the \
            next build starts with an empty one (and is as slow as a first build). Running releases \
            and workers are not touched.
            """
        )

        @Argument(help: "The app's name.")
        var app: String

        @OptionGroup var options: ConfigOptions

        func run() async throws {
            try await Self.reporting {
                let config = try options.load()
                let name = try AppName.argument(app)
                let home = BuildHome(appsRoot: config.appsRoot, app: name)
                do {
                    print(try home.clear() ? "cleared \(home.path)" : "\(app) has no build cache (\(home.path) does not exist)")
                } catch {
                    throw CLIError("cannot clear \(home.path): \(error)")
                }
            }
        }
    }
}
