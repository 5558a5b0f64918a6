import Foundation
import Logging
import SlipwayCore

/// SIGUSR2 (`systemctl reload slipway`), issue 19: the pass in progress is cancelled (a build
/// stopped, its staging removed, `current` untouched), then the agent re-executes in place.
/// A re-exec asked for by SIGUSR2 and not yet done or given up.
struct ReexecRequest: Sendable {
    let requestedAt: Date
    /// The binary at the agent's path (nil: /proc/self/exe cannot be read).
    let path: String?
    /// `path agent --handover-check`, started at SIGUSR2 so that it runs while the pass in
    /// progress is cancelled: nil when the binary can take the workers over, else why not.
    let check: Task<String?, Never>
}

/// A new image's handover, read before the services start and taken over by the agent loop
/// (while the API binds again, beside it).
struct PendingHandover: Sendable {
    let incoming: Reexec.Incoming
    let record: Result<HandoverRecord, any Error>
}

extension AgentRuntime {
    /// Writes `state_dir/agent.json` for `slipway status`: one write at a time, each of the image
    /// as it is when its turn comes, so an older copy never lands after a newer one (the
    /// take-over's detached save could land after the completed re-exec timeline's and leave
    /// `agent.json` without its last steps).
    public func saveImage() {
        imageSaves.withLock { _ in image.withLock { $0 }.save(stateDir: config.stateDir) }
    }

    /// A fresh start writes `agent.json` now; a re-exec's new image keeps what the previous one
    /// handed over for `takeOverHandedWorkers` (and writes `agent.json` once it knows the counts).
    public func prepare(incoming: Reexec.Incoming?, handover: Result<HandoverRecord, any Error>?) {
        guard let incoming, let handover else { return saveImage() }
        self.handover.withLock { $0 = PendingHandover(incoming: incoming, record: handover) }
        // The timeline so far, so the API can mark when it listens, adopted or not yet.
        guard case .success(let record) = handover else { return }
        var timeline = record.timeline ?? ReexecTimeline(requestedAt: record.requestedAt)
        if let execAt = incoming.execAt { timeline.mark(.exec, at: execAt) }
        timeline.mark(.imageStarted, at: incoming.startedAt)
        timeline.mark(.recordRead)
        image.withLock { $0.lastReexecTimeline = timeline }
    }

    /// First thing in the agent loop: takes the workers of a re-exec's record over.
    func takeOverHandedWorkers(logger: Logger) async {
        guard let pending = handover.withLock({ pending in defer { pending = nil }; return pending }) else { return }
        guard await Reexec.takeOver(pending, runtime: self, logger: logger) else { return saveImage() }
        // The files last, off the way to READY=1: an unlink or a rename on a busy disk can wait
        // for the filesystem's journal for longer than the whole re-exec takes.
        Task.detached { [self] in
            pending.incoming.finish()
            saveImage()
        }
    }

    func requestReexec() {
        let requestedAt = Date()
        reexecRequest.withLock { request in
            guard request == nil else { return }
            let path = Reexec.executablePath()
            request = ReexecRequest(requestedAt: requestedAt, path: path, check: Task.detached {
                guard let path else { return "cannot read /proc/self/exe" }
                return await Reexec.check(path)
            })
        }
        currentPass.withLock { $0?.cancel() }
        wake()
    }

    /// The new image reached `step` of its re-exec; once it serves its API and told systemd
    /// READY=1 the steps are logged and kept in `agent.json`.
    func reexecReached(_ step: ReexecTimeline.Step, logger: Logger) {
        let complete = image.withLock { image -> AgentImage? in
            guard var timeline = image.lastReexecTimeline, !timeline.isComplete else { return nil }
            timeline.mark(step)
            image.lastReexecTimeline = timeline
            return timeline.isComplete ? image : nil
        }
        guard let complete, let timeline = complete.lastReexecTimeline else { return }
        saveImage()
        logger.notice("re-exec steps: \(timeline.summary)")
    }
}

extension PassLoop {
    /// Checks the binary at the agent's path, freezes the workers, writes the handover record
    /// and `execve`s. Returns only when that did not happen; the workers carry on untouched.
    func reexec(_ request: ReexecRequest, reconciler: Reconciler, executor: PassExecutor) async {
        let requestedAt = request.requestedAt
        let stateDir = runtime.config.stateDir
        var timeline = ReexecTimeline(requestedAt: requestedAt.timeIntervalSince1970)
        timeline.mark(.passOver)
        guard let path = request.path else {
            return reexecFailed("cannot read /proc/self/exe", requestedAt: requestedAt)
        }
        logger.notice("SIGUSR2: re-executing \(path); every worker keeps running")
        if let problem = await request.check.value {
            return reexecFailed(problem, requestedAt: requestedAt)
        }
        timeline.mark(.checked)
        await withTaskExecutorPreference(executor) { await reconciler.stopHooks() }
        timeline.mark(.hooksStopped)
        systemd.send([("RELOADING", "1"), ("STATUS", "re-executing \(path)")])
        let apps = await runtime.supervisor.freezeForHandover()
        timeline.mark(.frozen)
        let image = runtime.image.withLock { $0 }
        var record = HandoverRecord(version: HandoverRecord.currentVersion, requestedAt: requestedAt.timeIntervalSince1970,
                                    processStartedAt: image.processStartedAt, reexecs: image.reexecs + 1,
                                    failedReexecs: image.failedReexecs, apiPort: boundAPIPort(), apps: apps)
        let recordPath = HandoverRecord.path(stateDir: stateDir)
        var problem: String
        do {
            record.timeline = timeline
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
        runtime.image.withLock { image in
            image.failedReexecs += 1
            image.lastReexec = "failed at \(UTCTime.now.iso8601): \(problem)"
        }
        runtime.saveImage()
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
    /// either) the workers are left to be replaced like those of a killed agent. True when the
    /// workers are this image's: the record and the previous image's fd are still to go
    /// (`Incoming.finish`).
    static func takeOver(_ pending: PendingHandover, runtime: AgentRuntime, logger: Logger) async -> Bool {
        let incoming = pending.incoming
        do {
            let record = try pending.record.get()
            try await runtime.supervisor.adopt(record)
            let adoptedAt = Date().timeIntervalSince1970
            let seconds = adoptedAt - record.requestedAt
            let milliseconds = Int((seconds * 1000).rounded())
            let image = runtime.image.withLock { image -> AgentImage in
                image.lastReexecTimeline?.mark(.adopted, at: adoptedAt)
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
            return true
        } catch {
            runtime.image.withLock { $0.lastReexecTimeline = nil }
            logger.error("cannot take the workers over: \(error); going back to the previous image")
            let why = incoming.fallBack(reason: "\(error)")
            logger.error("\(why); starting afresh: the workers are replaced like those of a killed agent")
            incoming.abandon()
            return false
        }
    }
}
