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
        try SafeTree.remove(building)
        try FileOps.makeDirectory(building)
        for id in withFrontend {
            try linkTree(from: layout.release(id) + "/frontend", to: building)
        }
        try FileOps.writeAtomically(Array(list.utf8), to: building + "/" + Self.marker)
        let previous = (try? FileManager.default.destinationOfSymbolicLink(atPath: layout.frontendArchive))
            .map { String($0.split(separator: "/").last ?? "") }
        try FileOps.replaceSymlink(at: layout.frontendArchive, pointingTo: ".slipway/archive/" + name)
        // Older trees: nginx resolves the symlink per request, so only a request already on its way
        // (a try_files stat, then its open) may still be in the tree just replaced: that one stays
        // until the next refresh (deleting it at once made such a request a 404, seen under load in
        // NginxTests: 1 asset in 31,120). Every tree before it goes.
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: layout.archives)) ?? [] where entry != name && entry != previous {
            try? SafeTree.remove(layout.archives + "/" + entry)
        }
    }

    /// Hardlinks every regular file under `source` into `destination` (replacing older ones).
    private func linkTree(from source: String, to destination: String) throws {
        try SafeTree.linkFiles(from: DirectoryHandle.open(source), to: DirectoryHandle.open(destination), skipping: EntryName(Self.marker))
    }
}
