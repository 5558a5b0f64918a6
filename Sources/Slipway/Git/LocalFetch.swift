import CGit2
import Foundation
import SlipwayCore

/// The warm path for a source on a local path: when a tip moved, the objects the mirror lacks
/// are copied from the source's object database one by one (read, hash checked, written), the
/// mirror's refs set to the source's, and no pack is built. libgit2's local transport answers
/// the same fetch by building a pack of what the mirror's refs do not reach and indexing it: for
/// a commit changing one file of a 5,000-file tree, 10 ms of a 100 ms deploy; copying its four
/// new objects takes well under one.
///
/// The mirror's invariant makes the walk short: an object in the mirror has everything it
/// reaches in the mirror too (a fetch, `LocalClone` and this copy all write an object only after
/// what it refers to), so the walk from a moved tip stops at the first object the mirror holds,
/// and objects are written children first: a copy cut short leaves no object whose children are
/// missing. A large push (more than `Limits` allow) goes through
/// the transport instead, where a pack is the better shape.
enum LocalFetch {
    /// How much a copy takes on before it leaves the fetch to the transport.
    struct Limits {
        var objects = 2_000
        var bytes = 32 << 20
    }

    /// Brings `mirror`'s refs under `refspecs` to the local source at `url`'s, with one open of
    /// the source: `.unchanged` when its refs are the mirror's (`LocalListing`), `.fetched` once
    /// the new objects are copied and the refs set; nil when it does not apply or cannot (not a
    /// local path, too much to copy, an object unreadable): the caller then fetches through the
    /// transport, which also says what went wrong.
    static func sync(_ mirror: GitRepository, from url: String, refspecs: [String], limits: Limits = Limits()) -> SyncOutcome? {
        guard RemoteURL(url)?.transport == .local, let path = LocalListing.path(of: url),
              let ours = try? mirror.localRefs(under: refspecs) else { return nil }
        let outcome = LocalListing.withRepository(at: path) { source -> SyncOutcome? in
            guard let theirs = LocalListing.coveredRefs(source, under: refspecs) else { return nil }
            if LocalListing.ids(theirs) == ours { return .unchanged }
            var sourceObjects: OpaquePointer?, mirrorObjects: OpaquePointer?
            guard git_repository_odb(&sourceObjects, source) == 0 else { return nil }
            defer { git_odb_free(sourceObjects) }
            guard git_repository_odb(&mirrorObjects, mirror.pointer) == 0 else { return nil }
            defer { git_odb_free(mirrorObjects) }
            guard let missing = missingObjects(from: theirs.map(\.oid), source: source, sourceObjects: sourceObjects,
                                                 in: mirrorObjects, limits: limits)
            else { return nil }
            for oid in missing {
                guard copy(oid, from: sourceObjects, to: mirrorObjects) else { return nil }
            }
            return setRefs(of: mirror, to: theirs, from: ours) ? .fetched : nil
        }
        git_error_clear()
        return outcome ?? nil
    }

    /// Every object reachable from `tips` that `mirror` lacks, children before the objects that
    /// refer to them; nil when there are more than the copy takes on, or one cannot be read.
    private static func missingObjects(from tips: [git_oid], source: OpaquePointer?, sourceObjects: OpaquePointer?,
                                       in mirror: OpaquePointer?, limits: Limits) -> [git_oid]? {
        var order: [git_oid] = []
        var seen = Set<ObjectID>()
        var missing = 0, bytes = 0
        // Depth first without recursion (a long new history would overflow the stack): an
        // object is pushed again as `emit` under its children, so it is written after them.
        var stack: [(oid: git_oid, emit: Bool)] = tips.map { ($0, false) }
        while let (oid, emit) = stack.popLast() {
            if emit {
                order.append(oid)
                continue
            }
            var key = oid
            guard seen.insert(ObjectID(key)).inserted, git_odb_exists(mirror, &key) == 0 else { continue }
            missing += 1
            guard missing <= limits.objects else { return nil }
            var size = 0
            var type = GIT_OBJECT_INVALID
            guard git_odb_read_header(&size, &type, sourceObjects, &key) == 0 else { return nil }
            stack.append((oid, true))
            if type == GIT_OBJECT_BLOB {
                bytes += size
                guard bytes <= limits.bytes else { return nil }
                continue
            }
            var object: OpaquePointer?
            guard git_object_lookup(&object, source, &key, type) == 0 else { return nil }
            defer { git_object_free(object) }
            switch type {
            case GIT_OBJECT_COMMIT:
                stack.append((git_commit_tree_id(object).pointee, false))
                for index in 0..<git_commit_parentcount(object) {
                    if let parent = git_commit_parent_id(object, index) { stack.append((parent.pointee, false)) }
                }
            case GIT_OBJECT_TREE:
                for index in 0..<git_tree_entrycount(object) {
                    guard let entry = git_tree_entry_byindex(object, index) else { return nil }
                    // A submodule's commit belongs to another repository.
                    if git_tree_entry_filemode(entry) == GIT_FILEMODE_COMMIT { continue }
                    stack.append((git_tree_entry_id(entry).pointee, false))
                }
            case GIT_OBJECT_TAG:
                stack.append((git_tag_target_id(object).pointee, false))
            default:
                return nil
            }
        }
        return order
    }

    /// One object read from the source (libgit2 checks its hash as it reads) and written to the
    /// mirror, which names it by the hash of what it was given: it can only be the object asked for.
    private static func copy(_ oid: git_oid, from source: OpaquePointer?, to mirror: OpaquePointer?) -> Bool {
        var wanted = oid
        var object: OpaquePointer?
        guard git_odb_read(&object, source, &wanted) == 0 else { return false }
        defer { git_odb_object_free(object) }
        var written = git_oid()
        guard git_odb_write(&written, mirror, git_odb_object_data(object), git_odb_object_size(object), git_odb_object_type(object)) == 0
        else { return false }
        return git_oid_equal(&written, &wanted) != 0
    }

    /// The mirror's refs under `refspecs` made the source's: moved and new ones set, ones the
    /// source no longer has removed (as a fetch with prune does).
    private static func setRefs(of mirror: GitRepository, to theirs: [(name: String, oid: git_oid)], from ours: RemoteRefs) -> Bool {
        for (name, oid) in theirs {
            var oid = oid
            if ours[name] == GitRepository.hex(&oid) { continue }
            var reference: OpaquePointer?
            guard git_reference_create(&reference, mirror.pointer, name, &oid, 1, "slipway: local fetch") == 0 else { return false }
            git_reference_free(reference)
        }
        let kept = Set(theirs.map(\.name))
        for name in ours.keys where !kept.contains(name) {
            guard git_reference_remove(mirror.pointer, name) == 0 else { return false }
        }
        return true
    }
}

/// A git object id as a set member.
private struct ObjectID: Hashable {
    let bytes: [UInt8]

    init(_ oid: git_oid) {
        var oid = oid
        bytes = withUnsafeBytes(of: &oid.id) { Array($0) }
    }
}
