/// Wakes whoever waits for something of an app's workers to change (one became ready, one
/// exited, a rollout ended): the watcher threads signal it, the supervisor sleeps on it with a
/// deadline instead of polling. A waiter first reads `generation`, then looks at the state, then
/// waits `since` that generation: a signal in between is never lost. Wake-ups may be spurious;
/// a waiter looks again.
final class ChangeSignal: Sendable {
    private struct Waiters {
        var generation = 0
        var next = 0
        var waiting: [Int: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Mutex(Waiters())

    var generation: Int { state.withLock { $0.generation } }

    /// Wakes every waiter (from any thread).
    func signal() {
        let woken = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.generation += 1
            defer { state.waiting = [:] }
            return Array(state.waiting.values)
        }
        woken.forEach { $0.resume() }
    }

    /// Returns once signalled after `seen`, or at `deadline` (never, without one). Not cut short
    /// by cancellation: a caller that must stop when cancelled passes a deadline and looks.
    func wait(since seen: Int, until deadline: ContinuousClock.Instant?) async {
        var timer: Task<Void, Never>?
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let id = state.withLock { state -> Int? in
                guard state.generation == seen else { return nil }
                state.next += 1
                state.waiting[state.next] = continuation
                return state.next
            }
            guard let id else { return continuation.resume() }
            if let deadline {
                timer = Task { [self] in
                    try? await Task.sleep(until: deadline)
                    state.withLock { $0.waiting.removeValue(forKey: id) }?.resume()
                }
            }
        }
        timer?.cancel()
    }
}
