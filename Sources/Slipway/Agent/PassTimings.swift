import Foundation

/// Where one pass's time went, phase by phase, for the debug log line that closes each pass
/// (`--log-level debug`): `pass took 31.2 ms: state 0.8, manifests 2.1, remotes 9.0, …`.
/// Phases that run once per app add up over the apps. Reading the clock costs tens of
/// nanoseconds, so the pass is measured always and the line written only at debug level.
final class PassTimings {
    private var order: [String] = []
    private var totals: [String: Duration] = [:]
    private var notes: [String] = []
    private let started = ContinuousClock.now
    private let startedCPU = PassTimings.processCPU()

    /// Runs `body` and adds the time it took to `phase`.
    func measure<T>(_ phase: String, _ body: () throws -> T) rethrows -> T {
        let start = ContinuousClock.now
        defer { add(phase, ContinuousClock.now - start) }
        return try body()
    }

    /// Runs `body` and adds the time it took to `phase`.
    func measure<T>(_ phase: String, _ body: () async throws -> T) async rethrows -> T {
        let start = ContinuousClock.now
        defer { add(phase, ContinuousClock.now - start) }
        return try await body()
    }

    func add(_ phase: String, _ took: Duration) {
        if totals[phase] == nil { order.append(phase) }
        totals[phase, default: .zero] += took
    }

    /// A figure that overlaps the phases (how long the mirrors' syncs took, wherever they ran).
    func note(_ text: String) {
        notes.append(text)
    }

    /// The time since this pass's timings began.
    var elapsed: Duration { ContinuousClock.now - started }

    /// `pass took 31.2 ms: state 0.8, manifests 2.1, …` (phases in the order they first ran;
    /// "other" is what no phase covers).
    var summary: String {
        let total = elapsed
        let covered = totals.values.reduce(Duration.zero, +)
        let phases = order.map { "\($0) \(Self.ms(totals[$0]!))" } + ["other \(Self.ms(max(.zero, total - covered)))"]
        return "pass took \(Self.ms(total)) ms (CPU \(Self.ms(Self.processCPU() - startedCPU)) ms): " + phases.joined(separator: ", ")
            + notes.map { "; " + $0 }.joined()
    }

    /// The CPU time (user and system) every thread of this process has used.
    static func processCPU() -> Duration {
        var now = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now)
        return .seconds(now.tv_sec) + .nanoseconds(now.tv_nsec)
    }

    static func ms(_ duration: Duration) -> String {
        String(format: "%.1f", Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15)
    }
}
