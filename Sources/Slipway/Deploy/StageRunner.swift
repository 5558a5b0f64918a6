import Foundation
import SlipwayCore

/// Runs a list of stages in order, each through the one `StageReporter`, and says how the run
/// ended as a typed `DeployResult`: the only place that decides superseded, cancelled,
/// failed or degraded.
struct StageRunner {
    let reporter: StageReporter
    /// The newer manifests commit a push announced during this run, if any: checked before
    /// the stages that commit to the release (expand, switch), so a superseded release is never
    /// switched to.
    var supersededBy: @Sendable () -> String? = { nil }

    func run(_ steps: [any StageStep], _ context: inout DeployContext) async -> DeployResult {
        var switched = false
        for step in steps {
            // Until the switch, a shutdown or a newer push stops the run with `current` untouched.
            if !switched, Task.isCancelled { return .cancelled(at: step.stage) }
            if step.stage == .expand || step.stage == .switch, let newer = supersededBy() {
                return .superseded(by: newer)
            }
            if step.stage == .switch { switched = true }
            do {
                let earlier = step.earlierWork(context)
                let (_, timing) = try await reporter.run(step.stage, release: context.release,
                                                         log: step.stage == .build ? context.logPath : nil, earlier: earlier) {
                    try await step.run(&context)
                }
                context.timings.append(timing)
            } catch {
                let failure = error as? StageFailure ?? StageFailure(stage: step.stage, message: "\(error)")
                if Task.isCancelled { return .cancelled(at: failure.stage) }
                // The new release serves and works with the expanded schema: a failed contract
                // leaves it live; the next pass runs the contract again.
                if failure.stage == .contract {
                    context.contractFailure = failure.message
                    continue
                }
                return .failed(failure.stage, reason: failure.message)
            }
        }
        if let failure = context.contractFailure { return .degraded(contractFailed: failure) }
        return .succeeded
    }
}
