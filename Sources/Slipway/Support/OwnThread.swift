import Foundation

/// Blocking work (a `waitpid`, thousands of unlinks) run on a thread of its own and awaited: on
/// the cooperative pool (two threads on a 2-core host) it would hold one of them throughout.
enum OwnThread {
    static func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { (done: CheckedContinuation<T, Never>) in
            Thread.detachNewThread { done.resume(returning: work()) }
        }
    }
}
