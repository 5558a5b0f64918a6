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
///   or a removal's grace.
final class StateRecall {
    let file: StateFile
    private var known: (identity: FileIdentity, state: AgentState)?
    /// The state as last fsynced (in `state.json` and `state.durable.json`).
    private var durable: AgentState?

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
        return state
    }

    func save(_ state: AgentState) throws {
        known = nil
        var timestampsOnly = durable
        timestampsOnly?.lastPass = state.lastPass
        let bytes = Array(try JSONFiles.encode(state))
        if let timestampsOnly, timestampsOnly == state {
            try FileOps.writeAtomically(bytes, to: file.path, mode: 0o640, durable: false)
        } else {
            try FileOps.writeAtomically(bytes, to: file.path, mode: 0o640)
            // The same inode under the second name: no second write, no second fsync.
            let temp = durablePath + ".tmp-\(getpid())"
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

    private static func decode(_ path: String) -> AgentState? {
        guard let bytes = FileOps.readFile(path), !bytes.isEmpty else { return nil }
        return try? JSONDecoder().decode(AgentState.self, from: Data(bytes))
    }
}
