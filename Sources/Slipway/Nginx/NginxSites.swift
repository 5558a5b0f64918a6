import Foundation
import Logging
import SlipwayCore

/// Writes the server blocks Slipway owns in nginx's `sites_dir` (`slipway-<app>.conf`), checks
/// nginx's whole configuration after each change, and reloads nginx once per pass when
/// something changed, never otherwise. A change nginx refuses is undone at once (the previous
/// file goes back), and the refusal is reported against its app. After a reload, every changed
/// `listen` must be held by nginx (`NginxListenCheck`): the apps whose listen is not get their
/// previous file back and nginx is reloaded once more with the others' changes; a reload command
/// that fails puts every changed file back. Either way the files on disk stay what nginx runs,
/// and the next pass tries again. A removed file is never put back: removing cannot make a
/// reload fail.
struct NginxSites {
    let nginx: AgentConfig.Nginx
    let stateDir: String
    let logger: Logger
    var check = NginxListenCheck()

    /// A rendered server block, and the address it serves on (checked after a reload).
    struct Site: Equatable {
        var text: String
        var listen: ServeListen
    }

    /// What a pass wants for one app: a rendered file, or none (the app is gone or not served).
    /// Apps absent from the plan (an invalid manifest, say) keep whatever file they have.
    typealias Plan = [AppName: Site?]

    /// Why an app's new server block is not what nginx runs; its previous file is back.
    enum NotTaken: Equatable {
        /// The reload command failed (its words).
        case reloadFailed(String)
        /// After the reload, no socket of nginx's listens on the app's `listen`.
        case unserved(ServeListen)
        /// Reloaded without the unserved apps' changes, nginx still did not take it.
        case notTakenWithout([AppName: ServeListen])
    }

    struct Outcome {
        /// Apps whose new config nginx refused, with nginx's words.
        var refused: [AppName: String] = [:]
        var changed: [AppName] = []
        /// nginx was reloaded and took what it carried.
        var reloaded = false
        /// Changed apps whose new server block did not take.
        var notTaken: [AppName: NotTaken] = [:]
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
        var listens: [AppName: ServeListen] = [:]
        for app in outcome.changed { if let site = plan[app] ?? nil { listens[app] = site.listen } }
        let restore = { (apps: [AppName]) in
            for app in apps { self.restore(previous[app] ?? nil, at: self.nginx.sitesDir + "/" + NginxSite.fileName(for: app)) }
        }
        if let problem = await run(nginx.reload, what: "reload") {
            logger.error("nginx reload failed; the previous server blocks are back: \(problem)")
            outcome.notTaken = listens.mapValues { _ in .reloadFailed(problem) }
            restore(Array(listens.keys))
            return outcome
        }
        let unserved = await check.unserved(listens)
        if unserved.isEmpty {
            outcome.reloaded = true
            logger.info("nginx reloaded (\(outcome.changed.map(\.value).joined(separator: ", ")) changed)")
            return outcome
        }
        let missing = Self.describe(unserved)
        logger.error("nginx was reloaded, but none of its sockets listens on \(missing) \(DurationText.format(check.deadline)) later: it kept its previous configuration (its error log says why; often another process holds the port); those server blocks are back")
        outcome.notTaken = unserved.mapValues { .unserved($0) }
        restore(Array(unserved.keys))
        let others = listens.filter { unserved[$0.key] == nil }
        let removed = outcome.changed.filter { listens[$0] == nil }
        guard !others.isEmpty || !removed.isEmpty else { return outcome }
        // The others' changes (removals among them) go in without the apps nginx could not bind,
        // checked first: this combination of files was not tested as such.
        if await run(nginx.test, what: "test") == nil, await run(nginx.reload, what: "reload") == nil,
           await check.unserved(others).isEmpty {
            outcome.reloaded = true
            logger.info("nginx reloaded without \(missing)")
            return outcome
        }
        logger.error("nginx did not take a reload without \(missing) either; the previous server blocks are back")
        for app in others.keys { outcome.notTaken[app] = .notTakenWithout(unserved) }
        restore(Array(others.keys))
        return outcome
    }

    /// `127.0.0.1:8080 (shop), 80 (blog)`.
    static func describe(_ listens: [AppName: ServeListen]) -> String {
        listens.sorted { $0.key < $1.key }.map { "\($0.value) (\($0.key))" }.joined(separator: ", ")
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
