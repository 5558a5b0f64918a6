import Dispatch
import Foundation

/// Empties a release store's `trash/` (pruned releases: thousands of files each) with one thread
/// per core. The top levels are taken back and listed here the way `SafeTree.remove` does it
/// (each directory made root's and 0700 before it is listed), then the subtrees found a few
/// levels down are handed to `SafeTree.remove` side by side, and what is left (the emptied
/// skeleton) goes last. Same guarantees as `SafeTree.remove`: nothing outside is reached.
enum TrashRemoval {
    /// Levels listed before the subtrees are shared out (trash / release / backend / …).
    static let depth = 3

    static func remove(_ path: String, threads: Int = ProcessInfo.processInfo.activeProcessorCount) throws {
        guard threads > 1, let top = try? DirectoryHandle.open(path) else { return try SafeTree.remove(path) }
        var level: [(parent: DirectoryHandle, name: EntryName)] = []
        var parents = [top]
        for _ in 0..<depth {
            level = []
            var next: [DirectoryHandle] = []
            for parent in parents {
                if geteuid() == 0 { try parent.set(owner: (0, 0), mode: 0o700) }
                for (name, mayBeDirectory) in try parent.entries() {
                    level.append((parent, name))
                    if mayBeDirectory, let child = try parent.openDirectory(name) { next.append(child) }
                }
            }
            if next.isEmpty || level.count >= threads * 16 { break }
            parents = next
        }
        // Handles are only read (an fd each) while the subtrees below them are removed.
        nonisolated(unsafe) let subtrees = level
        var failures = [(any Error)?](repeating: nil, count: level.count)
        failures.withUnsafeMutableBufferPointer { slots in
            // Each iteration writes only its own slot.
            nonisolated(unsafe) let slots = slots
            DispatchQueue.concurrentPerform(iterations: level.count) { index in
                do {
                    try SafeTree.remove(subtrees[index].name, in: subtrees[index].parent)
                } catch {
                    slots[index] = error
                }
            }
        }
        if let failure = failures.compactMap({ $0 }).first { throw failure }
        try SafeTree.remove(path)
    }
}
