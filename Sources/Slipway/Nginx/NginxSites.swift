import Foundation
import Logging
import SlipwayCore

/// Writes the server blocks Slipway owns in nginx's `sites_dir` (`slipway-<app>.conf`), checks
/// nginx's whole configuration after each change, and reloads nginx once per pass when
/// something changed, never otherwise. A change nginx refuses is undone at once (the previous
/// file goes back), and the refusal is reported against its app. A reload that fails, or that
/// nginx did not take (its master started no new workers; without a readable master, a changed
/// `listen` nothing serves afterwards), puts every file it carried back as well: the files on
/// disk stay what nginx runs, and the next pass tries again.
struct NginxSites {
    let nginx: AgentConfig.Nginx
    let stateDir: String
    let logger: Logger
    var probe = NginxListenProbe()
    /// How long a reload nginx is still working on is waited for (a large `geo` map loads for
    /// seconds); at its end the reload is taken as done.
    static let reloadPatience = Duration.seconds(60)

    /// A rendered server block, and the address it serves on (probed after a reload).
    struct Site: Equatable {
        var text: String
        var listen: ServeListen
    }

    /// What a pass wants for one app: a rendered file, or none (the app is gone or not served).
    /// Apps absent from the plan (an invalid manifest, say) keep whatever file they have.
    typealias Plan = [AppName: Site?]

    struct Outcome {
        /// Apps whose new config nginx refused, with nginx's words.
        var refused: [AppName: String] = [:]
        var changed: [AppName] = []
        /// nginx was reloaded and took it.
        var reloaded = false
        /// The reload command failed, or nginx did not take the reload: every changed app's
        /// previous file is back.
        var reloadError: String?
        /// The reload command succeeded but nginx did not take the reload.
        var notTaken = false
        /// The changed apps' new `listen`s (a removed file has none).
        var listens: [AppName: ServeListen] = [:]
        /// Changed apps whose `listen` nothing accepted on after the reload.
        var unserved: [AppName: ServeListen] = [:]
    }

    func apply(_ plan: Plan, known: Set<AppName>) async -> Outcome {
        var outcome = Outcome()
        var plan = plan
        var previous: [AppName: String?] = [:]
        // Files of apps no manifest and no disk knows any more are removed too.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: nginx.sitesDir)) ?? [] where NginxSite.isOwnedFile(name) {
            if let app = AppName(String(name.dropFirst(8).dropLast(5))), plan[app] == nil, !known.contains(app) {
                plan[app] = .some(nil)
            }
        }
        for (app, wanted) in plan.sorted(by: { $0.key < $1.key }) {
            let path = nginx.sitesDir + "/" + NginxSite.fileName(for: app)
            let existing = FileOps.readFile(path).map { String(decoding: $0, as: UTF8.self) }
            guard existing != wanted?.text else { continue }
            do {
                if let wanted {
                    try FileOps.makeDirectories(nginx.sitesDir)
                    try FileOps.writeAtomically(Array(wanted.text.utf8), to: path)
                } else {
                    unlink(path)
                }
            } catch {
                outcome.refused[app] = "cannot write \(path): \(error)"
                continue
            }
            if let problem = await run(nginx.test, what: "test") {
                // Put the last good file back, so nginx keeps serving what it served.
                restore(existing, at: path)
                outcome.refused[app] = problem
                logger.error("nginx refused the new config; the previous one stays: \(problem)", metadata: ["app": "\(app)", "stage": "switch"])
                continue
            }
            outcome.changed.append(app)
            previous[app] = existing
            logger.info(wanted == nil ? "nginx config removed" : "nginx config written: \(path)", metadata: ["app": "\(app)"])
        }
        guard !outcome.changed.isEmpty else { return outcome }
        let changedNames = outcome.changed.map(\.value).joined(separator: ", ")
        for app in outcome.changed { if let site = plan[app] ?? nil { outcome.listens[app] = site.listen } }
        let listens = outcome.listens
        let pidFile = nginx.pidFile
        let master = pidFile.flatMap { NginxMaster.read(pidFile: $0) }
        let signalled = NginxMaster.bootTick()
        let reloadStarted = ContinuousClock.now
        if let problem = await run(nginx.reload, what: "reload") {
            outcome.reloadError = problem
            logger.error("nginx reload failed; the previous server blocks are back: \(problem)")
        } else {
            let taken: Bool
            if let master, let pidFile {
                switch await NginxMaster.awaitReload(pidFile: pidFile, since: master, signalledAfter: signalled,
                                                     deadline: probe.deadline, patience: Self.reloadPatience, interval: probe.interval) {
                case .taken:
                    taken = true
                case .stillReloading:
                    // It read the new files and is still loading them: putting the old ones
                    // back now could only mix the two.
                    logger.warning("nginx's master (pid \(master.pid)) was still reloading \(DurationText.format(Self.reloadPatience)) later; its new workers were not seen yet")
                    taken = true
                case .notTaken:
                    taken = false
                    // The addresses nothing serves are the likely reason, and name their apps.
                    outcome.unserved = await probe.unserved(listens, once: true)
                }
            } else {
                outcome.unserved = await probe.unserved(listens)
                taken = outcome.unserved.isEmpty
            }
            if taken {
                outcome.reloaded = true
                logger.info("nginx reloaded (\(changedNames) changed)")
                return outcome
            }
            outcome.notTaken = true
            if let master, let pidFile, outcome.unserved.isEmpty {
                outcome.reloadError = "nginx was reloaded, but its master (pid \(master.pid), \(pidFile)) finished the reload without starting new workers"
            } else {
                let missing = outcome.unserved.sorted { $0.key < $1.key }.map { "\($0.value) (\($0.key))" }.joined(separator: ", ")
                let later = DurationText.format(.milliseconds((ContinuousClock.now - reloadStarted).milliseconds / 100 * 100))
                outcome.reloadError = "nginx was reloaded, but nothing accepts connections on \(missing) \(later) later"
            }
            logger.error("\(outcome.reloadError!): nginx kept its previous configuration (its error log says why; often another process holds a port); the previous server blocks are back")
        }
        // nginx runs the previous configuration: the files go back to it, so the next pass
        // writes them again and retries.
        for app in outcome.changed {
            restore(previous[app] ?? nil, at: nginx.sitesDir + "/" + NginxSite.fileName(for: app))
        }
        return outcome
    }

    /// The file as it was before this pass (none: removed).
    private func restore(_ text: String?, at path: String) {
        if let text { try? FileOps.writeAtomically(Array(text.utf8), to: path) } else { unlink(path) }
    }

    /// Runs an nginx command; nil when it succeeded, else its exit and last lines of output.
    private func run(_ command: String, what: String) async -> String? {
        let logPath = stateDir + "/logs/nginx.log"
        do {
            let log = try BuildLog.create(at: logPath)
            defer { log.close() }
            log.note("==> \(UTCTime.now.iso8601) nginx \(what): \(command)")
            let environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"]
            let start = log.size
            let child = try ChildProcess.spawnShell(command, in: "/", environment: environment, outputFD: log.fd)
            let termination = await child.wait(timeout: .seconds(30), grace: .seconds(2))
            guard termination.succeeded else {
                let output = log.text(since: start).split(separator: "\n").suffix(5).joined(separator: "\n")
                return "'\(command)' \(termination.explanation): \(output)"
            }
            return nil
        } catch {
            return "'\(command)' could not run: \(error)"
        }
    }
}
