/// One holder at a time, the others served in the order they came: an app's rollout, verify,
/// memory replacement and handover never interleave (the supervisor is an actor, but each of
/// these awaits in the middle), and a waiter sleeps instead of polling a flag.
final class SerialGate: Sendable {
    private struct Holders {
        var held = false
        var queue: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(Holders())

    var isHeld: Bool { state.withLock { $0.held } }

    func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                guard state.held else {
                    state.held = true
                    return true
                }
                state.queue.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Takes the gate only if nobody holds it (the monitor skips a round rather than wait).
    func tryAcquire() -> Bool {
        state.withLock { state in
            guard !state.held else { return false }
            state.held = true
            return true
        }
    }

    /// Hands the gate to the next waiter, or frees it.
    func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.queue.isEmpty else {
                state.held = false
                return nil
            }
            return state.queue.removeFirst()
        }
        next?.resume()
    }
}
