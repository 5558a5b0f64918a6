import Foundation

/// The `on_deploy` hooks still running. Passes fire them and do not wait; the agent's hook
/// service stops them on shutdown (after the pass loop, before the workers drain), and a
/// one-shot pass waits for them before its process exits.
public final class HookTasks: Sendable {
    /// Each hook by a number of its own, so a finished one leaves the table by itself (an agent
    /// that runs for months fires thousands).
    private let running = Mutex<[Int: Task<Void, Never>]>([:])
    private let counter = Mutex(0)

    public init() {}

    func add(_ tasks: [Task<Void, Never>]) {
        for task in tasks {
            let number = counter.withLock { value -> Int in
                value += 1
                return value
            }
            running.withLock { $0[number] = task }
            Task { [running] in
                await task.value
                running.withLock { $0[number] = nil }
            }
        }
    }

    /// Waits for every hook running now (each is bounded by its timeout).
    func waitForAll() async {
        for task in running.withLock({ Array($0.values) }) { await task.value }
    }

    /// Stops the hooks running now (their commands get SIGTERM, then SIGKILL) and waits for them.
    func stopAll() async {
        running.withLock { $0.values.forEach { $0.cancel() } }
        await waitForAll()
    }
}
