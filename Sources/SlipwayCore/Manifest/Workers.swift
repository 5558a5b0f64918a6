/// How the backend runs as supervised workers (`backend.command` and the fields around it).
/// Nothing here shapes the release's bytes, so none of it is in the release fingerprint: a
/// change reloads the workers without a rebuild.
public struct Workers: Sendable, Equatable {
    /// One program with its arguments, exec'd by `/bin/sh` in the release's backend directory.
    public var command: String
    public var instances: Instances
    /// The socket the agent binds once and hands every worker as fd 3; nil: no socket.
    public var listen: WorkerListen?
    public var ready: Ready
    public var health: Health?
    public var stop: Stop
    /// RSS of a worker's process group above which it is replaced gracefully.
    public var maxMemory: UInt64?
    public var restart: Restart
    /// Whether a Node worker on a TCP listener gets Slipway's preload (`backend.preload`).
    public var preload: Bool

    public init(command: String, instances: Instances = .count(1), listen: WorkerListen? = nil, ready: Ready = Ready(),
                health: Health? = nil, stop: Stop = Stop(), maxMemory: UInt64? = nil, restart: Restart = Restart(),
                preload: Bool = true) {
        self.command = command
        self.instances = instances
        self.listen = listen
        self.ready = ready
        self.health = health
        self.stop = stop
        self.maxMemory = maxMemory
        self.restart = restart
        self.preload = preload
    }

    /// Whether a new worker starts at a lower CPU priority until it is ready: only where its
    /// readiness is a signal (`READY=1`) or a check (health) that a slow start cannot pass by
    /// itself. A worker judged ready by staying up for `Ready.settle` must get the CPU to fail
    /// in that second: at a low priority on a busy host, Node that would die on a taken port
    /// was still booting a second later, was judged ready, and crashed after the switch.
    public var startsAtLowPriority: Bool { ready.notify || health != nil }

    public enum Instances: Sendable, Equatable, CustomStringConvertible {
        case count(Int)
        /// One per CPU of the host.
        case max

        public func resolved(cpus: Int) -> Int {
            switch self {
            case .count(let n): return n
            case .max: return Swift.max(1, cpus)
            }
        }

        public var description: String {
            switch self {
            case .count(let n): return "\(n)"
            case .max: return "max"
            }
        }
    }

    public struct Ready: Sendable, Equatable {
        /// Wait for `READY=1` on `NOTIFY_SOCKET`; otherwise a worker is ready once it has
        /// stayed up for `Ready.settle` (and passed the health check, when there is one).
        public var notify: Bool
        public var timeout: Duration
        /// How long a new worker serves beside the worker it replaces before that one is told to
        /// stop and the rollout moves to the next slot (Kubernetes' `minReadySeconds`). A worker
        /// that exits meanwhile, or fails a health check meanwhile (`minReadyChecks`), fails the
        /// rollout while every old worker still serves. It also paces a rollout, which spreads the fresh
        /// processes' slow first seconds (1.7 times a warm one's p99, `bench/fresh_worker.py`)
        /// over a longer time: as many slow answers, a lower p99 while it lasts.
        public var minReady: Duration
        public static let minReadyAtMost = Duration.seconds(60)
        /// How often the health check runs while a new worker waits out `minReady`.
        public static let minReadyCheckEvery = Duration.seconds(1)

        /// When, counted from the start of the wait, the health check runs during `minReady`:
        /// every `minReadyCheckEvery`, and always at its end, so a worker that answers 500 for a
        /// while and then recovers is caught, as Kubernetes' readiness must hold throughout.
        public var minReadyChecks: [Duration] {
            guard minReady > .zero else { return [] }
            var checks = Array(sequence(first: Self.minReadyCheckEvery) { $0 + Self.minReadyCheckEvery }.prefix { $0 < minReady })
            checks.append(minReady)
            return checks
        }

        public static let settle = Duration.seconds(1)
        /// The longest a starting worker stays at the lower priority (half its `timeout`, at
        /// most this): long enough for a Node or Python boot, short enough that a saturated
        /// host's rollout is not held back for the whole wait.
        public static let lowPriorityAtMost = Duration.seconds(5)
        /// How long a worker at the lower priority may take before it gets normal priority.
        public var lowPriorityPatience: Duration { min(timeout / 2, Self.lowPriorityAtMost) }

        /// 30 s (Kamal's `deploy_timeout`): Node with Express took 3.6–6.2 s to listen on a
        /// 2-core host busy with a load test, and a start that fails for a slow boot fails the deploy.
        public init(notify: Bool = false, timeout: Duration = .seconds(30), minReady: Duration = .zero) {
            self.notify = notify
            self.timeout = timeout
            self.minReady = minReady
        }
    }

    public struct Health: Sendable, Equatable {
        public var path: String
        public var timeout: Duration

        public init(path: String, timeout: Duration = .seconds(2)) {
            self.path = path
            self.timeout = timeout
        }
    }

    public struct Stop: Sendable, Equatable {
        public var signal: StopSignal
        public var timeout: Duration

        public init(signal: StopSignal = .term, timeout: Duration = .seconds(10)) {
            self.signal = signal
            self.timeout = timeout
        }
    }

    /// The signals a server may take as "stop gracefully": unicorn and php-fpm use SIGQUIT,
    /// some servers SIGHUP, SIGUSR1/2 or SIGWINCH (Apache's graceful-stop).
    public enum StopSignal: String, Sendable, Equatable, CaseIterable {
        case int = "SIGINT"
        case term = "SIGTERM"
        case quit = "SIGQUIT"
        case hup = "SIGHUP"
        case usr1 = "SIGUSR1"
        case usr2 = "SIGUSR2"
        case winch = "SIGWINCH"

        /// The Linux signal number.
        public var number: Int32 {
            switch self {
            case .int: 2
            case .term: 15
            case .quit: 3
            case .hup: 1
            case .usr1: 10
            case .usr2: 12
            case .winch: 28
            }
        }
    }

    public struct Restart: Sendable, Equatable {
        public var backoff: Duration
        public var maxBackoff: Duration
        public var minUptime: Duration

        public init(backoff: Duration = .milliseconds(100), maxBackoff: Duration = .seconds(30), minUptime: Duration = .seconds(10)) {
            self.backoff = backoff
            self.maxBackoff = maxBackoff
            self.minUptime = minUptime
        }
    }
}

/// Where workers' listening socket is: a TCP address, or a unix socket inside the app's directory.
public enum WorkerListen: Sendable, Hashable, CustomStringConvertible {
    case tcp(host: String, port: Int)
    /// Relative to `<apps_root>/<app>/`, so a manifest can never make the agent bind elsewhere.
    case unix(RelativePath)

    public enum Problem: Error, Equatable {
        case badTCP, badUnix
    }

    public static func parse(_ text: String) -> Result<WorkerListen, Problem> {
        if text.hasPrefix("unix:") {
            guard case .success(let path) = RelativePath.parse(String(text.dropFirst(5))), !path.isRoot else { return .failure(.badUnix) }
            return .success(.unix(path))
        }
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else {
            return .failure(.badTCP)
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let allowed = host.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || ".:-".unicodeScalars.contains($0)) }
        guard !host.isEmpty, allowed else { return .failure(.badTCP) }
        return .success(.tcp(host: host, port: port))
    }

    public var description: String {
        switch self {
        case .tcp(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): return "unix:\(path)"
        }
    }
}
