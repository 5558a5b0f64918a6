import Foundation

/// Runs `body` on a thread of its own and waits for it without holding a thread of the test
/// pool: a call that blocks on purpose (a wait polled with `usleep`) would otherwise stall every
/// async test beside it (the pool has one thread per core: two on CI).
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(with: Result { try body() })
        }
    }
}
