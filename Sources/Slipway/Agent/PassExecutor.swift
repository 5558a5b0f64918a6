import Dispatch

/// Runs reconcile passes on their own serial queue instead of Swift's cooperative pool.
/// A pass does blocking work (libgit2 fetches, exporting thousands of files, waitpid): on the
/// pool, with one or two cores, that would stall the HTTP API, and a post-receive hook waiting
/// at most 2 s would report a healthy agent as having missed its notification.
final class PassExecutor: TaskExecutor, @unchecked Sendable {
    private let queue = DispatchQueue(label: "slipway.pass")

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        queue.async { job.runSynchronously(on: executor) }
    }
}
