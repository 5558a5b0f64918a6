/// Decodes the `backend` section: where it is, how it is built, and how its workers run.
enum BackendDecoder {
    static let keys = ["build", "dir", "user", "env_file", "command", "instances", "listen", "ready", "health", "stop",
                       "max_memory", "restart", "preload"]
    /// Keys that only mean something when workers run.
    static let workerKeys = ["instances", "listen", "ready", "health", "stop", "max_memory", "restart", "preload"]

    static func decode(_ node: YAMLNode, _ reader: FieldReader) -> Manifest.Backend? {
        guard let fields = reader.fields(of: node, named: "backend", known: keys) else { return nil }
        var backend = Manifest.Backend()
        backend.build = fields["build"].flatMap { reader.nonEmptyString($0, "backend.build") }
        if let dirNode = fields["dir"] {
            guard let value = reader.path(dirNode, "backend.dir", allowRoot: true) else { return nil }
            backend.dir = value
        }
        if let node = fields["user"], let name = reader.nonEmptyString(node, "backend.user") {
            if name == "root" {
                reader.report("backend.user must not be root: an app's build and workers run its own code", at: node.mark,
                              hint: "name an unprivileged account, like www-data, or leave it out for the agent's apps_user")
            } else if !AccountName.isValid(name) {
                reader.report("backend.user '\(name)' is not a valid account name", at: node.mark, hint: "for example www-data")
            } else {
                backend.user = name
            }
        }
        if let node = fields["env_file"], let path = reader.nonEmptyString(node, "backend.env_file") {
            if path.hasPrefix("/"), !path.split(separator: "/").contains("..") {
                backend.envFile = path
            } else {
                reader.report("backend.env_file must be an absolute path without '..', not '\(path)'", at: node.mark,
                              hint: "for example /etc/slipway/env/platform.env")
            }
        }
        if let commandNode = fields["command"] {
            backend.workers = decodeWorkers(commandNode, fields, reader)
        } else {
            for key in workerKeys {
                guard let node = fields[key] else { continue }
                reader.report("backend.\(key) has no effect without backend.command", at: node.mark,
                              hint: "add the command that starts a worker, like 'command: node src/server.js'")
            }
        }
        return backend
    }

    static func decodeWorkers(_ commandNode: YAMLNode, _ fields: FieldReader.Fields, _ reader: FieldReader) -> Workers? {
        guard let command = reader.nonEmptyString(commandNode, "backend.command") else { return nil }
        if let op = WorkerCommand.compoundOperator(in: command) {
            reader.report("backend.command must be one program with its arguments, but it contains \(op)", at: commandNode.mark,
                          hint: "Slipway execs the command so signals and LISTEN_PID reach the program; put a sequence or pipeline in a script that ends with 'exec'")
            return nil
        }
        if let assignment = WorkerCommand.leadingAssignment(in: command) {
            let name = assignment.prefix { $0 != "=" }
            reader.report("backend.command starts with the variable assignment '\(assignment)'", at: commandNode.mark,
                          hint: "variables go in the manifest's env (env: {\(name): \"\(assignment.dropFirst(name.count + 1))\"}); the command names the program")
            return nil
        }
        var workers = Workers(command: command)
        if let value = fields["preload"].flatMap({ reader.bool($0, "backend.preload") }) { workers.preload = value }
        if let node = fields["instances"] {
            if case .scalar("max", _) = node.content {
                workers.instances = .max
            } else if let count = reader.integer(node, "backend.instances", range: 1...256) {
                workers.instances = .count(count)
            }
        }
        if let node = fields["listen"], let text = reader.nonEmptyString(node, "backend.listen") {
            switch WorkerListen.parse(text) {
            case .success(let address): workers.listen = address
            case .failure(.badTCP):
                reader.report("backend.listen '\(text)' is not host:port", at: node.mark,
                              hint: "for example 127.0.0.1:3000, [::1]:3000, or unix:run/web.sock")
            case .failure(.badUnix):
                reader.report("backend.listen '\(text)' must name a socket inside the app's directory", at: node.mark,
                              hint: "use a relative path like unix:run/web.sock (it lives under <apps_root>/<app>/)")
            }
        }
        if let node = fields["ready"], let ready = reader.fields(of: node, named: "backend.ready", known: ["notify", "timeout", "min_ready"]) {
            if let value = ready["notify"].flatMap({ reader.bool($0, "backend.ready.notify") }) { workers.ready.notify = value }
            if let value = ready["timeout"].flatMap({ reader.duration($0, "backend.ready.timeout", atLeast: .milliseconds(100)) }) {
                workers.ready.timeout = value
            }
            if let node = ready["min_ready"], let value = reader.duration(node, "backend.ready.min_ready", atLeast: .zero) {
                if value > Workers.Ready.minReadyAtMost {
                    reader.report("backend.ready.min_ready must be at most \(DurationText.format(Workers.Ready.minReadyAtMost)), not \(DurationText.format(value))",
                                  at: node.mark, hint: "a few seconds: each slot of a rollout waits this long, with two workers running")
                } else {
                    workers.ready.minReady = value
                }
            }
        }
        if let node = fields["health"], let health = reader.fields(of: node, named: "backend.health", known: ["path", "timeout"]) {
            let path = health.required("path", example: "/health").flatMap { node -> String? in
                guard let text = reader.nonEmptyString(node, "backend.health.path") else { return nil }
                let printable = text.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7F }
                guard text.hasPrefix("/"), printable else {
                    reader.report("backend.health.path must be a URL path starting with '/', not '\(text)'", at: node.mark,
                                  hint: "for example /api/health")
                    return nil
                }
                return text
            }
            let timeout = health["timeout"].flatMap { reader.duration($0, "backend.health.timeout", atLeast: .milliseconds(10)) }
            if let path { workers.health = Workers.Health(path: path, timeout: timeout ?? .seconds(2)) }
            if workers.listen == nil, let path {
                reader.report("backend.health.path '\(path)' is checked through backend.listen, which is not set", at: node.mark,
                              hint: "add 'listen: 127.0.0.1:3000' (the address the workers serve on)")
            }
        }
        if let node = fields["stop"], let stop = reader.fields(of: node, named: "backend.stop", known: ["signal", "timeout"]) {
            if let signalNode = stop["signal"], let text = reader.nonEmptyString(signalNode, "backend.stop.signal") {
                let name = text.uppercased().hasPrefix("SIG") ? text.uppercased() : "SIG" + text.uppercased()
                if let signal = Workers.StopSignal(rawValue: name) {
                    workers.stop.signal = signal
                } else {
                    let names = Workers.StopSignal.allCases.map(\.rawValue).joined(separator: ", ")
                    reader.report("backend.stop.signal must be one of \(names), not '\(text)'", at: signalNode.mark,
                                  hint: "SIGTERM suits most servers (gunicorn, Go, systemd's default); PM2 apps expect SIGINT; unicorn and php-fpm stop gracefully on SIGQUIT")
                }
            }
            if let value = stop["timeout"].flatMap({ reader.duration($0, "backend.stop.timeout", atLeast: .milliseconds(100)) }) {
                workers.stop.timeout = value
            }
        }
        if let node = fields["max_memory"], let text = reader.nonEmptyString(node, "backend.max_memory") {
            if let bytes = ByteSize.parse(text), bytes >= 1 << 20 {
                workers.maxMemory = bytes
            } else {
                reader.report("backend.max_memory must be a size of at least 1M, not '\(text)'", at: node.mark, hint: "for example 512M or 2G")
            }
        }
        if let node = fields["restart"], let restart = reader.fields(of: node, named: "backend.restart", known: ["backoff", "max_backoff", "min_uptime"]) {
            if let value = restart["backoff"].flatMap({ reader.duration($0, "backend.restart.backoff", atLeast: .milliseconds(10)) }) {
                workers.restart.backoff = value
            }
            if let value = restart["max_backoff"].flatMap({ reader.duration($0, "backend.restart.max_backoff", atLeast: .milliseconds(10)) }) {
                workers.restart.maxBackoff = value
            }
            if let value = restart["min_uptime"].flatMap({ reader.duration($0, "backend.restart.min_uptime", atLeast: .milliseconds(100)) }) {
                workers.restart.minUptime = value
            }
            if workers.restart.maxBackoff < workers.restart.backoff, let node = restart["max_backoff"] {
                reader.report("backend.restart.max_backoff is shorter than backend.restart.backoff", at: node.mark)
            }
        }
        return workers
    }
}
