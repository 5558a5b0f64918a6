import Foundation
import Logging
import Synchronization

/// Pruned releases are deleted, and the objects only they used collected, after the deploy
/// that pruned them rather than in it: a prune moves releases into the trash (one rename
/// each), and the thousands of unlinks a release of thousands of files costs run here, on a
/// thread of their own, while the pass goes on (52 ms of a 5,000-file deploy's 150 ms).
///
/// One collection per app at a time. The app's next pass waits for it before it touches the
/// app's store (`idle`): an object the collection finds linked by no release could otherwise
/// be linked into the new release just as it goes. `agent --once` waits for every collection
/// before it exits, so a one-shot pass leaves no trash behind; a killed agent's half-emptied
/// trash is emptied by the next pass (`ReleaseStore.cleanUpInterrupted`).
public final class TrashCollector: Sendable {
    /// The collection running (or last run) per app root, by a number of its own so that a
    /// finished one leaves the table by itself.
    private let running = Mutex<(next: Int, tasks: [String: (number: Int, task: Task<Void, Never>)])>((0, [:]))

    public init() {}

    /// Starts emptying `store`'s trash, after the collection of it still running (if any).
    /// `work` is what the collection does (tests hold one up with theirs).
    func collect(_ store: ReleaseStore, logger: Logger, work: (@Sendable () throws -> Void)? = nil) {
        let work = work ?? { try store.emptyTrash() }
        let key = store.layout.root
        running.withLock { running in
            running.next += 1
            let number = running.next
            let before = running.tasks[key]?.task
            let task = Task { [running = self.running] in
                await before?.value
                await OwnThread.run {
                    do {
                        try work()
                    } catch {
                        logger.error("emptying the trash of pruned releases failed: \(error); the next pass tries again",
                                     metadata: ["stage": "prune"])
                    }
                }
                running.withLock { if $0.tasks[key]?.number == number { $0.tasks[key] = nil } }
            }
            running.tasks[key] = (number, task)
        }
    }

    /// Returns once no collection of `store` runs.
    func idle(_ store: ReleaseStore) async {
        let task = running.withLock { $0.tasks[store.layout.root]?.task }
        await task?.value
    }

    /// Returns once no collection runs at all.
    func waitForAll() async {
        for task in running.withLock({ $0.tasks.values.map(\.task) }) { await task.value }
    }
}
