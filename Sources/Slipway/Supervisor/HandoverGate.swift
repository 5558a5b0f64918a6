import Foundation

/// Keeps a worker's watcher thread away from its fds while the agent hands them to its next
/// image (issue 19): the watcher holds the gate while it handles one poll() result; `pause()`
/// waits for that to end and keeps it out until `resume()` (after a failed `execve`). A
/// successful `execve` ends the thread with the image.
final class HandoverGate: @unchecked Sendable {  // NSCondition guards `paused`.
    private let condition = NSCondition()
    private var paused = false
    private var inside = false

    func enter() {
        condition.lock()
        while paused { condition.wait() }
        inside = true
        condition.unlock()
    }

    func leave() {
        condition.lock()
        inside = false
        condition.broadcast()
        condition.unlock()
    }

    /// Returns once the watcher is outside (blocked in poll() or waiting at the gate).
    func pause() {
        condition.lock()
        paused = true
        while inside { condition.wait() }
        condition.unlock()
    }

    func resume() {
        condition.lock()
        paused = false
        condition.broadcast()
        condition.unlock()
    }
}
