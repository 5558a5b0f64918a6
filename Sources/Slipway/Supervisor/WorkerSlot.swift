import SlipwayCore

/// One slot of an app's workers (`SLIPWAY_WORKER`): the worker in it (running, or exited and
/// waiting out its backoff), the crash backoff it has earned and how often it was restarted,
/// which `slipway status` shows and a handover carries to the next image.
struct WorkerSlot {
    var worker: WorkerProcess?
    var backoff: RestartBackoff?
    /// When the crashed worker in this slot is started again (the monitor's to do).
    var restartAt: ContinuousClock.Instant?
    var restarts = 0
    /// The worker a rollout is starting for this slot, before it takes the slot: `slipway
    /// status` lists it beside the one it replaces (starting, then ready while it serves out
    /// `backend.ready.min_ready`), and a restarted agent finds it in the table as an orphan.
    var incoming: (worker: WorkerProcess, ready: Bool)?

    /// A worker is in the slot and has not exited.
    var running: WorkerProcess? { worker.flatMap { $0.exit == nil ? $0 : nil } }
}
