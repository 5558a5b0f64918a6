import Foundation
import SlipwayCore
import Synchronization

/// `release.json` records as last decoded, each with the identity of the file it came from.
/// A record is never edited in place, only replaced by a rename (`FileOps.writeAtomically`),
/// so a file with the same device, inode, size and change time holds the same bytes: a pass
/// then reads each record with one stat(2) instead of an open, a read and a JSON decode — and
/// a pass with nothing to do read every kept release's record three times an app (the plan's
/// observation, the retention check, the current release's metrics), which made decoding the
/// largest part of it.
enum ReleaseRecordCache {
    /// At most this many records are kept (a few hundred bytes each); past it, one is dropped
    /// for each one added.
    static let capacity = 4096

    private struct Entry {
        var identity: FileIdentity
        var record: ReleaseRecord
    }

    private static let entries = Mutex<[String: Entry]>([:])

    /// The record in the file at `path`, decoded only when the file is not the one last decoded.
    static func record(at path: String) -> ReleaseRecord? {
        guard let identity = FileIdentity(path: path) else {
            entries.withLock { _ = $0.removeValue(forKey: path) }
            return nil
        }
        if let known = entries.withLock({ $0[path] }), known.identity == identity { return known.record }
        // Read, then check that the file read is still the one stat(2) saw: a rename in between
        // must not pair new bytes with the old identity.
        guard let bytes = FileOps.readFile(path), let record = try? JSONDecoder().decode(ReleaseRecord.self, from: Data(bytes)),
              FileIdentity(path: path) == identity else {
            return bytes(path)
        }
        entries.withLock { entries in
            if entries[path] == nil, entries.count >= capacity { entries.remove(at: entries.startIndex) }
            entries[path] = Entry(identity: identity, record: record)
        }
        return record
    }

    /// The uncached read, for a file that changed while it was being read.
    private static func bytes(_ path: String) -> ReleaseRecord? {
        FileOps.readFile(path).flatMap { try? JSONDecoder().decode(ReleaseRecord.self, from: Data($0)) }
    }
}

/// What tells one file from another and from its own earlier contents without reading it:
/// device and inode (a rename over it brings another inode), size, and the times of the last
/// write and of the last change to its inode (nanoseconds).
struct FileIdentity: Equatable, Sendable {
    var device: UInt64
    var inode: UInt64
    var size: Int64
    var modified: timespec
    var changed: timespec

    init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        modified = info.st_mtim
        changed = info.st_ctim
    }

    static func == (a: FileIdentity, b: FileIdentity) -> Bool {
        a.device == b.device && a.inode == b.inode && a.size == b.size
            && a.modified.tv_sec == b.modified.tv_sec && a.modified.tv_nsec == b.modified.tv_nsec
            && a.changed.tv_sec == b.changed.tv_sec && a.changed.tv_nsec == b.changed.tv_nsec
    }
}
