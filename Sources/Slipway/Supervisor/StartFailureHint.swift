import Foundation
import SlipwayCore

/// Why a worker that died while starting died, when its own output says so plainly enough to
/// name the fix (today: a port the app binds itself; see `AddressInUse`).
enum StartFailureHint {
    /// Reads what `worker` wrote (its lines in the app's worker log), waiting up to `patience`
    /// for the watcher to drain its pipes, and returns the explanation, or nil.
    static func explain(_ worker: WorkerProcess, target: WorkerTarget, log: WorkerLog,
                        patience: Duration = .seconds(1)) async -> String? {
        let tag = "[\(worker.label)] "
        let deadline = ContinuousClock.now + patience
        let preload = preloadNote(target.workers)
        while true {
            let lines = WorkerLogReader(path: log.path).lastLines(400).compactMap { line -> String? in
                guard let range = line.range(of: tag), line[range.upperBound...].hasPrefix("out: ") || line[range.upperBound...].hasPrefix("err: ")
                else { return nil }
                return String(line[range.upperBound...].dropFirst(5))
            }
            if let text = AddressInUse.explanation(output: lines, listen: target.generation.listen, preload: preload) { return text }
            if ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Why a Node app on a TCP listener did not get fd 3 from Slipway's preload, if it did not.
    private static func preloadNote(_ workers: Workers) -> String? {
        var enabled = workers
        enabled.preload = true
        guard NodePreload.applies(to: enabled) else { return nil }
        if !workers.preload { return "backend.preload: false turns off Slipway's Node preload, which would do it" }
        if NodePreload.path == nil { return "Slipway's Node preload would do it, but \(NodePreload.installedPath) is not installed" }
        return nil
    }
}
