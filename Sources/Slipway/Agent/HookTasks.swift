import Foundation

/// The `on_deploy` hooks still running. Passes fire them and do not wait; the agent's hook
/// service stops them on shutdown (after the pass loop, before the workers drain), and a
/// one-shot pass waits for them before its process exits.
public final class HookTasks: Sendable {
    /// Each hook by a number of its own, so a finished one leaves the table by itself (an agent
    /// that runs for months fires thousands).
    private let running = Mutex<(next: Int, tasks: [Int: Task<Void, Never>])>((0, [:]))

    public init() {}

    func add(_ tasks: [Task<Void, Never>]) {
        for task in tasks {
            let number = running.withLock { running -> Int in
                running.next += 1
                running.tasks[running.next] = task
                return running.next
            }
            Task { [running] in
                await task.value
                running.withLock { $0.tasks[number] = nil }
            }
        }
    }

    /// Waits for every hook running now (each is bounded by its timeout); whether any hook was
    /// ever fired here.
    @discardableResult
    func waitForAll() async -> Bool {
        let (fired, tasks) = running.withLock { ($0.next > 0, Array($0.tasks.values)) }
        for task in tasks { await task.value }
        return fired
    }

    /// Stops the hooks running now (their commands get SIGTERM, then SIGKILL) and waits for them.
    func stopAll() async {
        running.withLock { $0.tasks.values.forEach { $0.cancel() } }
        await waitForAll()
    }
}
