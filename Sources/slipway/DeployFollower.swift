import Foundation
import Slipway
import SlipwayCore

/// Prints a pass as it happens, from the agent's event stream: one line per stage, with elapsed
/// times; on a terminal, the running stage's clock ticks in place; with `--logs`, the build's
/// output as it is written. Decides the exit status: the app's deploy (or the whole pass) failed or not.
final class DeployFollower: @unchecked Sendable {
    let app: String?
    let logs: Bool
    let tty = isatty(STDOUT_FILENO) == 1
    private let lock = NSLock()
    private var partial = ""
    private var following = false
    private var running: (label: String, since: Date)?
    private var tail: (path: String, offset: UInt64)?
    private(set) var failed = false
    private var subscribedContinuation: CheckedContinuation<Void, Never>?
    private var subscribedSeen = false
    private var finishedContinuation: CheckedContinuation<Void, Never>?
    private var finishedSeen = false

    init(app: String?, logs: Bool, followImmediately: Bool = false) {
        self.app = app
        self.logs = logs
        self.following = followImmediately
    }

    /// Raw bytes from the stream; complete lines are handled.
    func feed(_ chunk: String) {
        lock.lock()
        partial += chunk
        var lines: [String] = []
        while let newline = partial.firstIndex(of: "\n") {
            lines.append(String(partial[..<newline]))
            partial = String(partial[partial.index(after: newline)...])
        }
        lock.unlock()
        for line in lines {
            if let event = try? JSONDecoder().decode(AgentEvent.self, from: Data(line.utf8)) { handle(event) }
        }
    }

    func handle(_ event: AgentEvent) {
        lock.lock()
        defer { lock.unlock() }
        switch event.event {
        case .subscribed:
            subscribedSeen = true
            subscribedContinuation?.resume()
            subscribedContinuation = nil
        case .passStarted:
            following = true
            emit("pass started")
        case .stage:
            guard following, let stage = event.stage, let app = event.app else { return }
            let label = "\(app.padding(toLength: 14, withPad: " ", startingAt: 0)) \(stage.rawValue.padding(toLength: Stage.allCases.map(\.rawValue.count).max() ?? 8, withPad: " ", startingAt: 0))"
            switch event.state {
            case "started":
                emit("\(label) …" + (event.release.map { " \($0)" } ?? ""))
                running = (label, Date())
                if logs, let log = event.log { tail = (log, 0) }
            case "done":
                flushTail()
                running = nil
                emit("\(label) \(tty ? "✓" : "done") \(Self.elapsed(event.milliseconds))")
            default:
                flushTail()
                running = nil
                emit("\(label) \(tty ? "✗" : "failed") \(Self.elapsed(event.milliseconds)): \(event.error ?? "")")
            }
        case .deploy:
            guard following, let app = event.app else { return }
            if event.state == "failed", self.app == nil || self.app == app { failed = true }
            emit("\(app): deploy \(event.state ?? "") \(event.release ?? "")")
        case .reload:
            guard following, let app = event.app else { return }
            if event.state == "failed", self.app == nil || self.app == app { failed = true }
            emit("\(app): reload \(event.state ?? "") \(event.release ?? "")" + (event.error.map { ": \($0)" } ?? ""))
        case .passFinished:
            guard following else { return }
            let unsettled = event.unsettled ?? []
            if let app {
                if unsettled.contains(where: { $0.hasPrefix(app + ":") }) { failed = true }
            } else if event.converged != true {
                failed = true
            }
            emit(event.converged == true ? "pass finished: converged" : "pass finished: not converged" + (unsettled.isEmpty ? "" : "\n  " + unsettled.joined(separator: "\n  ")))
            finishedSeen = true
            finishedContinuation?.resume()
            finishedContinuation = nil
        }
    }

    func waitUntilSubscribed() async {
        await withCheckedContinuation { continuation in
            lock.lock()
            if subscribedSeen { lock.unlock(); continuation.resume(); return }
            subscribedContinuation = continuation
            lock.unlock()
        }
    }

    func waitUntilFinished() async {
        let ticker = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(200))
                self?.tick()
            }
        }
        defer { ticker.cancel() }
        await withCheckedContinuation { continuation in
            lock.lock()
            if finishedSeen { lock.unlock(); continuation.resume(); return }
            finishedContinuation = continuation
            lock.unlock()
        }
    }

    /// Every 200 ms: build output that appeared, and the running stage's clock on a terminal.
    private func tick() {
        lock.lock()
        defer { lock.unlock() }
        flushTail(keep: true)
        if tty, let running {
            let seconds = Date().timeIntervalSince(running.since)
            FileHandle.standardOutput.write(Data("\r\(running.label) … \(String(format: "%.1fs", seconds))\u{1B}[K".utf8))
        }
    }

    private func flushTail(keep: Bool = false) {
        guard let current = tail, let handle = FileHandle(forReadingAtPath: current.path) else { return }
        defer { try? handle.close() }
        try? handle.seek(toOffset: current.offset)
        let data = handle.readDataToEndOfFile()
        if !data.isEmpty {
            for line in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
                emit("  │ \(line)")
            }
            // Only whole lines were printed; keep a partial last line for the next read.
            let consumed = data.lastIndex(of: 0x0A).map { UInt64($0 + 1) } ?? 0
            tail = (current.path, current.offset + consumed)
        }
        if !keep { tail = nil }
    }

    private func emit(_ line: String) {
        let time = UTCTime.now.iso8601.dropFirst(11).prefix(8)
        let prefix = tty ? "\r\u{1B}[K" : ""
        FileHandle.standardOutput.write(Data("\(prefix)\(time)  \(TerminalText.escaped(line, keepNewlines: true))\n".utf8))
    }

    static func elapsed(_ milliseconds: Int64?) -> String {
        guard let ms = milliseconds else { return "" }
        return ms < 1000 ? "\(ms)ms" : String(format: "%.1fs", Double(ms) / 1000)
    }
}
