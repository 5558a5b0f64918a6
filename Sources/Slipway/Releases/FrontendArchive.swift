import Foundation
import SlipwayCore

/// Every kept release's frontend files in one tree, so a browser still holding an older
/// `index.html` can load the hashed chunks it names after a deploy (nginx tries
/// `current/frontend` first, then this). Files are hardlinks, newer releases win, and the tree
/// is swapped in whole: `frontend-archive` is a symlink replaced with one rename(2).
struct FrontendArchive {
    let layout: AppLayout

    static let marker = ".slipway-releases"

    /// Rebuilds the archive when the kept releases changed; cheap when they did not.
    func refresh(releases: [ReleaseID]) throws {
        let withFrontend = releases.sorted().filter { FileOps.isDirectory(layout.release($0) + "/frontend") }
        let list = withFrontend.map(\.description).joined(separator: "\n")
        if let current = FileOps.readFile(layout.frontendArchive + "/" + Self.marker), String(decoding: current, as: UTF8.self) == list {
            return
        }
        try FileOps.makeDirectories(layout.archives)
        let name = "a\(UTCTime.now.millisecondsSinceEpoch)-\(getpid())"
        let building = layout.archives + "/" + name
        try FileOps.removeTree(building)
        try FileOps.makeDirectory(building)
        for id in withFrontend {
            try linkTree(from: layout.release(id) + "/frontend", to: building)
        }
        try FileOps.writeAtomically(Array(list.utf8), to: building + "/" + Self.marker)
        try FileOps.replaceSymlink(at: layout.frontendArchive, pointingTo: ".slipway/archive/" + name)
        // Older trees: nginx resolves the symlink per request, so nothing points at them any more.
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: layout.archives)) ?? [] where entry != name {
            try? FileOps.removeTree(layout.archives + "/" + entry)
        }
    }

    /// Hardlinks every regular file under `source` into `destination` (replacing older ones).
    private func linkTree(from source: String, to destination: String) throws {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: source)) ?? [] where name != Self.marker {
            let from = source + "/" + name, to = destination + "/" + name
            switch FileOps.lstatMode(from) {
            case S_IFDIR?:
                if FileOps.lstatMode(to) != S_IFDIR {
                    try FileOps.removeTree(to)
                    try FileOps.makeDirectory(to)
                }
                try linkTree(from: from, to: to)
            case S_IFREG?:
                unlink(to)
                guard link(from, to) == 0 else { throw SystemError("linking into the frontend archive", path: to) }
            default:
                continue  // symlinks and anything else are not served from the archive
            }
        }
    }
}
