import Dispatch

/// Runs one app's supervisor on a queue of its own instead of Swift's cooperative pool: it does
/// blocking work (the worker table written with fsync, /proc scans, renicing a ready worker),
/// and on one or two cores the pool also serves the HTTP API, which must answer `/healthz`
/// while a rollout runs.
final class SupervisorQueue: SerialExecutor, @unchecked Sendable {  // DispatchQueue is thread-safe.
    private let queue: DispatchQueue

    init(app: String) {
        queue = DispatchQueue(label: "slipway.supervisor.\(app)")
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedSerialExecutor()
        queue.async { job.runSynchronously(on: executor) }
    }
}
