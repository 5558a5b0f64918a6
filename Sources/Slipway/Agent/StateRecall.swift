import Foundation

/// `state.json`, written and read so that a pass with nothing to do costs neither a decode nor
/// a wait on the disk:
///
/// - **Read once.** The state as this agent last wrote or read it is kept with the identity of
///   the file (device, inode, size, times); a pass whose state file is still that file takes the
///   state from memory. Any other writer replaces the file (a rename: another inode), and then it
///   is read as before.
/// - **fsync only for what matters.** A write whose state differs from the last one made durable
///   in more than `lastPass` (the pass's timestamps) is fsynced, and also linked as
///   `state.durable.json`; a write that only moves `lastPass` is renamed into place without an
///   fsync. On a loaded disk an fsync waits for the journal commit of every other writer's data
///   (tens to hundreds of ms here under other engineers' builds, for a pass of a few ms). After a
///   crash, ext4 (and btrfs) give either file whole, since they flush a file renamed over another;
///   where a filesystem does not and `state.json` is left empty or torn, `load` reads
///   `state.durable.json`: at worst the last pass's timestamps are lost, never a pin, a failure
///   or a removal's grace. A new process learns what the durable copy holds when it first reads
///   the state, so `agent --once` skips the fsync too.
final class StateRecall {
    let file: StateFile
    private var known: (identity: FileIdentity, state: AgentState)?
    /// The state as last fsynced (in `state.json` and `state.durable.json`).
    private var durable: AgentState?
    /// The state without `lastPass`, as last encoded.
    private var encodedRest: (state: AgentState, bytes: [UInt8])?

    init(stateDir: String) {
        file = StateFile(stateDir: stateDir)
    }

    var path: String { file.path }
    var durablePath: String { (file.path as NSString).deletingLastPathComponent + "/state.durable.json" }

    func load() -> AgentState {
        let identity = FileIdentity(path: file.path)
        if let known, let identity, known.identity == identity { return known.state }
        guard let state = Self.decode(file.path) ?? Self.decode(durablePath) else {
            known = nil
            return AgentState()
        }
        // Remembered only when the file did not change while it was read.
        if let identity, FileIdentity(path: file.path) == identity { known = (identity, state) } else { known = nil }
        if durable == nil { durable = durableCopy(read: state, identity: identity) }
        return state
    }

    /// What `state.durable.json` holds, learnt in a new process (`agent --once`), so that its
    /// pass's save fsyncs only when more than `lastPass` changed, as a running agent's does: the
    /// state just read when both names are one file, else the durable copy read too (a decode of
    /// a few KB against an fsync, which waits for the journal).
    private func durableCopy(read state: AgentState, identity: FileIdentity?) -> AgentState? {
        let copy = FileIdentity(path: durablePath)
        if let copy, copy == identity { return state }
        return copy == nil ? nil : Self.decode(durablePath)
    }

    func save(_ state: AgentState) throws {
        known = nil
        var timestampsOnly = durable
        timestampsOnly?.lastPass = state.lastPass
        let bytes = try encode(state)
        if let timestampsOnly, timestampsOnly == state {
            try FileOps.writeAtomically(bytes, to: file.path, mode: 0o640, durable: false)
        } else {
            try FileOps.writeAtomically(bytes, to: file.path, mode: 0o640)
            // The same inode under the second name: no second write, no second fsync.
            let temp = FileOps.tempName(for: durablePath)
            unlink(temp)
            if link(file.path, temp) == 0, rename(temp, durablePath) == 0 {
                durable = state
            } else {
                unlink(temp)
                durable = nil
            }
        }
        if let identity = FileIdentity(path: file.path) { known = (identity, state) }
    }

    /// `JSONFiles.encode(state)`, byte for byte, without encoding again what did not change:
    /// the state without `lastPass` is encoded when it differs from the last one, and `lastPass`
    /// (new every pass) is encoded alone and put in its sorted place among the top-level keys.
    /// Pretty-printed JSON puts each top-level key on its own line after two spaces (a raw newline
    /// is never inside a string), so the place is found by reading those lines' keys.
    func encode(_ state: AgentState) throws -> [UInt8] {
        var rest = state
        rest.lastPass = nil
        let restBytes: [UInt8]
        if let encodedRest, encodedRest.state == rest {
            restBytes = encodedRest.bytes
        } else {
            restBytes = Array(try JSONFiles.encode(rest))
            encodedRest = (rest, restBytes)
        }
        guard let lastPass = state.lastPass else { return restBytes }
        let alone = Array(try JSONFiles.encode(["lastPass": lastPass]))
        // `{\n  "lastPass" : {…}\n}`: the entry is what lies between the outer braces' newlines.
        guard alone.count > 4, let open = alone.firstIndex(of: UInt8(ascii: "\n")), let close = alone.lastIndex(of: UInt8(ascii: "\n")),
              open < close, restBytes.last == UInt8(ascii: "}"), let end = restBytes.lastIndex(of: UInt8(ascii: "\n")) else {
            return Array(try JSONFiles.encode(state))
        }
        let entry = alone[(open + 1)..<close]
        let place = restBytes.withUnsafeBufferPointer { bytes -> Int? in
            var index = 0
            while index + 4 <= end {
                // A top-level key's line: a newline, two spaces, a quote.
                guard bytes[index] == 0x0A, bytes[index + 1] == 0x20, bytes[index + 2] == 0x20, bytes[index + 3] == 0x22 else {
                    index += 1
                    continue
                }
                var keyEnd = index + 4
                while keyEnd < end, bytes[keyEnd] != 0x22 { keyEnd += 1 }
                let key = String(decoding: UnsafeBufferPointer(rebasing: bytes[(index + 4)..<keyEnd]), as: UTF8.self)
                if key.lowercased() > "lastpass" { return index }
                index = keyEnd
            }
            return nil
        }
        if let place {
            // Before that key's line; the entry before it already ends with a comma.
            return Array(restBytes[..<place]) + [0x0A] + entry + [UInt8(ascii: ",")] + Array(restBytes[place...])
        }
        // After the last entry, which now needs a comma.
        return Array(restBytes[..<end]) + Array(",\n".utf8) + entry + Array(restBytes[end...])
    }

    private static func decode(_ path: String) -> AgentState? {
        guard let bytes = FileOps.readFile(path), !bytes.isEmpty else { return nil }
        return try? JSONDecoder().decode(AgentState.self, from: Data(bytes))
    }
}
