import Foundation
import SlipwayCore

/// The symlinks a build left in its frontend output, checked once the tree is sealed: one that
/// leads outside the output is refused (nginx would serve whatever it names: /etc/passwd, /,
/// another app's files); one to a file inside the output becomes a hard link to that file, so it
/// is still served while nginx refuses every symlink (`disable_symlinks`); one to a directory
/// inside is refused, as nginx would not serve through it.
enum FrontendOutputLinks {
    struct Refused: Error, CustomStringConvertible {
        var description: String
    }

    /// `output` is the directory's path on disk; `declared` the manifest's `frontend.output`.
    static func settle(output: String, declared: RelativePath) throws {
        let links = try SafeTree.symlinks(under: output)
        for (link, target) in links.sorted(by: { $0.key < $1.key }) {
            let shown = declared.isRoot ? link : "\(declared)/\(link)"
            switch OutputLinks.resolve(link: link, target: target, links: links) {
            case .outside:
                throw Refused(description: "frontend output '\(shown)' links outside the release (to \(target)); "
                              + "copy the file into the output in the build instead of linking to it")
            case .loop:
                throw Refused(description: "frontend output '\(shown)' is a symlink loop (to \(target)); remove it in the build")
            case .inside(let resolved):
                let located = resolved.isEmpty ? nil : try? SafeTree.locate(resolved, under: output)
                switch (located?.status?.st_mode ?? 0) & S_IFMT {
                case S_IFREG:
                    try SafeTree.replaceLink(link, withFile: resolved, under: output)
                case 0 where !resolved.isEmpty && located?.status == nil:
                    throw Refused(description: "frontend output '\(shown)' is a dangling link (to \(target)); remove it in the build")
                default:
                    throw Refused(description: "frontend output '\(shown)' links to the directory '\(resolved.isEmpty ? "." : resolved)' inside the output; "
                                  + "nginx serves no symlinks: copy or move that directory in the build")
                }
            }
        }
    }
}
