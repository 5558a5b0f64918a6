import Foundation
import Logging
import SlipwayCore

/// SIGUSR2 (`systemctl reload slipway`), issue 19: the pass in progress is cancelled (a build
/// stopped, its staging removed, `current` untouched), then the agent re-executes in place.
extension AgentRuntime {
    /// Writes `state_dir/agent.json` for `slipway status`.
    public func saveImage() {
        image.withLock { $0 }.save(stateDir: config.stateDir)
    }

    func requestReexec() {
        let first = reexecRequest.withLock { request -> Bool in
            defer { if request == nil { request = Date() } }
            return request == nil
        }
        guard first else { return }
        currentPass.withLock { $0?.cancel() }
        wake()
    }
}

extension PassLoop {
    /// Checks the binary at the agent's path, freezes the workers, writes the handover record
    /// and `execve`s. Returns only when that did not happen; the workers carry on untouched.
    func reexec(requestedAt: Date, reconciler: Reconciler, executor: PassExecutor) async {
        let stateDir = runtime.config.stateDir
        guard let path = Reexec.executablePath() else {
            return reexecFailed("cannot read /proc/self/exe", requestedAt: requestedAt)
        }
        logger.notice("SIGUSR2: re-executing \(path); every worker keeps running")
        if let problem = await Reexec.check(path) {
            return reexecFailed(problem, requestedAt: requestedAt)
        }
        await withTaskExecutorPreference(executor) { await reconciler.stopHooks() }
        systemd.send([("RELOADING", "1"), ("STATUS", "re-executing \(path)")])
        let apps = await runtime.supervisor.freezeForHandover()
        let image = runtime.image.withLock { $0 }
        let record = HandoverRecord(version: HandoverRecord.currentVersion, requestedAt: requestedAt.timeIntervalSince1970,
                                    processStartedAt: image.processStartedAt, reexecs: image.reexecs + 1,
                                    failedReexecs: image.failedReexecs, apiPort: boundAPIPort(), apps: apps)
        let recordPath = HandoverRecord.path(stateDir: stateDir)
        var problem: String
        do {
            try record.save(stateDir: stateDir)
            logger.info("handing over \(record.workerCount) worker(s) of \(apps.count) app(s) (\(record.fds.count) fds)")
            problem = Reexec.exec(path: path, record: record, recordPath: recordPath, notifySocket: systemd.socketPath)
        } catch {
            problem = "cannot write the handover record: \(error)"
        }
        unlink(recordPath)
        await runtime.supervisor.resumeAfterFailedHandover()
        reexecFailed(problem, requestedAt: requestedAt)
    }

    private func reexecFailed(_ problem: String, requestedAt: Date) {
        logger.error("re-exec failed, this image goes on with every worker: \(problem)")
        let image = runtime.image.withLock { image -> AgentImage in
            image.failedReexecs += 1
            image.lastReexec = "failed at \(UTCTime.now.iso8601): \(problem)"
            return image
        }
        image.save(stateDir: runtime.config.stateDir)
        runtime.metrics.reexecFinished(outcome: .failed, seconds: Date().timeIntervalSince(requestedAt))
        systemd.send([("READY", "1"), ("STATUS", String("re-exec failed: \(problem)".prefix(200)))])
    }

    /// The port the HTTP API is bound to (`http.addr`), so the next image binds the same one.
    private func boundAPIPort() -> Int? {
        guard runtime.config.listen != nil, let bytes = FileOps.readFile(runtime.config.stateDir + "/http.addr", limit: 512) else { return nil }
        let text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.split(separator: ":").last.flatMap { Int($0) }
    }
}

extension Reexec {
    /// The new image's side: takes the workers of the record over, or goes back to the
    /// previous image (which takes them back). As a last resort (the previous image cannot
    /// either) the workers are left to be replaced like those of a killed agent.
    public static func takeOver(_ incoming: Incoming, _ handover: Result<HandoverRecord, any Error>, runtime: AgentRuntime, logger: Logger) async {
        do {
            let record = try handover.get()
            try await runtime.supervisor.adopt(record)
            incoming.finish()
            let seconds = Date().timeIntervalSince1970 - record.requestedAt
            let milliseconds = Int((seconds * 1000).rounded())
            let image = runtime.image.withLock { image -> AgentImage in
                image.processStartedAt = record.processStartedAt
                image.reexecs = record.reexecs
                image.failedReexecs = record.failedReexecs
                if let reason = incoming.fallbackReason {
                    image.reexecs -= 1
                    image.failedReexecs += 1
                    image.lastReexec = "failed at \(UTCTime.now.iso8601): the new image gave up (\(reason)); the previous one came back"
                } else {
                    image.lastReexec = "succeeded at \(UTCTime.now.iso8601) in \(milliseconds) ms, \(record.workerCount) worker(s) kept"
                }
                return image
            }
            runtime.tookOver.withLock { $0 = true }
            if let reason = incoming.fallbackReason {
                runtime.metrics.reexecsBefore(succeeded: image.reexecs, failed: image.failedReexecs - 1)
                runtime.metrics.reexecFinished(outcome: .rolledBack, seconds: seconds)
                logger.error("the new image could not take the workers over (\(reason)); the previous image took them back: \(record.workerCount) worker(s), none restarted")
            } else {
                runtime.metrics.reexecsBefore(succeeded: image.reexecs - 1, failed: image.failedReexecs)
                runtime.metrics.reexecFinished(outcome: .succeeded, seconds: seconds)
                logger.notice("re-executed in \(milliseconds) ms: \(record.workerCount) worker(s) of \(record.apps.count) app(s) taken over, none restarted")
            }
        } catch {
            logger.error("cannot take the workers over: \(error); going back to the previous image")
            let why = incoming.fallBack(reason: "\(error)")
            logger.error("\(why); starting afresh: the workers are replaced like those of a killed agent")
            incoming.abandon()
        }
    }
}
