import ArgumentParser
import Foundation
import SlipwayCore

struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check manifests before you push them.",
        discussion: """
        Every *.yaml / *.yml file under the given files or folders is one app. Prints each problem \
        as FILE:LINE:COL: message, and exits 1 if there is any; exits 0 with a one-line summary \
        when all are valid. Duplicate app names across files are an error.
        """
    )

    @Argument(help: ArgumentHelp("Manifest files or folders.", valueName: "path"))
    var paths: [String]

    func run() async throws {
        try await Self.reporting {
            var files: [ManifestSet.File] = []
            for path in paths {
                files += try Self.manifestFiles(at: path)
            }
            guard !files.isEmpty else { throw CLIError("no *.yaml or *.yml files under \(paths.joined(separator: ", "))") }
            let set = ManifestSet(files: files)
            let diagnostics = set.allDiagnostics
            guard diagnostics.isEmpty else {
                let count = diagnostics.count
                throw CLIError(diagnostics.map(\.description).joined(separator: "\n")
                               + "\n\(count) problem\(count == 1 ? "" : "s") in \(set.invalid.count) of \(files.count) manifest\(files.count == 1 ? "" : "s")")
            }
            let apps = set.valid.keys.sorted().map(\.value).joined(separator: ", ")
            print("ok: \(files.count) manifest\(files.count == 1 ? "" : "s") valid (\(apps))")
        }
    }

    static func manifestFiles(at path: String) throws -> [ManifestSet.File] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CLIError("\(path): no such file or folder")
        }
        let paths: [String]
        if isDirectory.boolValue {
            let base = path.hasSuffix("/") ? String(path.dropLast()) : path
            let entries = FileManager.default.enumerator(atPath: path)?.compactMap { $0 as? String } ?? []
            paths = entries.filter(ManifestSet.isManifestPath).sorted().map { base + "/" + $0 }
        } else {
            paths = [path]
        }
        return try paths.map { file in
            guard let data = FileManager.default.contents(atPath: file) else { throw CLIError("\(file): cannot read") }
            return ManifestSet.File(path: file, text: String(decoding: data, as: UTF8.self))
        }
    }
}
