import Foundation
import Logging
import SlipwayCore

/// Tells everyone that one stage of an app started and how it ended, in the same words: the
/// log ("started", "done in 1.2s", "failed: …", with stage metadata), the event stream that
/// `deploy --wait` follows, and the stage's timing for release records and metrics. A deploy's
/// stages and a contract step retried on a later pass both go through it.
struct StageReporter {
    let app: AppName
    let logger: Logger
    let onEvent: @Sendable (AgentEvent) -> Void

    /// Runs `body` as `stage` of `release`; `log` names the file its output goes to, for followers.
    /// `earlier`: the stage's work done before `body` (counted in its time and its start).
    func run<T>(_ stage: Stage, release: ReleaseID, log: String? = nil, earlier: Duration = .zero,
                _ body: () async throws -> T) async throws -> (value: T, timing: ReleaseRecord.StageTiming) {
        var stageLogger = logger
        stageLogger[metadataKey: "stage"] = "\(stage)"
        stageLogger.info("started", metadata: ["release": "\(release)"])
        var started = AgentEvent(.stage, app: app.value, stage: stage, state: "started")
        started.release = release.description
        started.log = log
        onEvent(started)
        let startedAt = UTCTime(millisecondsSinceEpoch: UTCTime.now.millisecondsSinceEpoch - earlier.milliseconds)
        let clock = ContinuousClock.now - earlier
        do {
            let value = try await body()
            let elapsed = (ContinuousClock.now - clock).milliseconds
            stageLogger.info("done in \(DurationText.format(.milliseconds(elapsed)))")
            var done = AgentEvent(.stage, app: app.value, stage: stage, state: "done")
            done.milliseconds = elapsed
            onEvent(done)
            return (value, .init(stage: stage, startedAt: startedAt, milliseconds: elapsed))
        } catch {
            stageLogger.error("failed: \(error)")
            var failed = AgentEvent(.stage, app: app.value, stage: stage, state: "failed")
            failed.milliseconds = (ContinuousClock.now - clock).milliseconds
            failed.error = "\(error)"
            onEvent(failed)
            throw error
        }
    }
}
