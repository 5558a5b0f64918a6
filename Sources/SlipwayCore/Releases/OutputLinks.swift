/// Where the symlinks in a build's frontend output lead, worked out on their text alone (no
/// file system): a link that resolves outside the output would let nginx serve any file on the
/// host (`dist/passwd.txt -> /etc/passwd`, `dist/root -> /`, another app's secrets).
public enum OutputLinks {
    public enum Resolution: Sendable, Equatable {
        /// Inside the output, at this path relative to it ("" is the output itself).
        case inside(String)
        /// Leaves the output: an absolute target, or `..` above the output's top.
        case outside
        /// More than 40 links in a row, or a loop.
        case loop
    }

    /// Resolves the link at `link` (a path relative to the output) whose target is `target`;
    /// `links` holds every symlink in the output (relative path to target), so a chain of links
    /// inside the output is followed.
    public static func resolve(link: String, target: String, links: [String: String]) -> Resolution {
        var hops = 0
        var pending: [String] = target.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        if target.hasPrefix("/") { return .outside }
        var resolved: [String] = link.split(separator: "/").dropLast().map(String.init)
        while !pending.isEmpty {
            let component = pending.removeFirst()
            switch component {
            case ".": continue
            case "..":
                if resolved.isEmpty { return .outside }
                resolved.removeLast()
            default:
                let candidate = (resolved + [component]).joined(separator: "/")
                if let next = links[candidate] {
                    hops += 1
                    if hops > 40 { return .loop }
                    if next.hasPrefix("/") { return .outside }
                    pending = next.split(separator: "/", omittingEmptySubsequences: true).map(String.init) + pending
                    continue  // relative to the link's own directory: `resolved` stays
                }
                resolved.append(component)
            }
        }
        return .inside(resolved.joined(separator: "/"))
    }
}
