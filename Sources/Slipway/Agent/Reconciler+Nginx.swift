import Foundation
import Logging
import SlipwayCore

/// The nginx side of a pass: each served app's server block rendered from its manifest, the
/// archive of its kept releases' frontend files refreshed, and nginx reloaded only when a
/// rendered file changed (a deploy alone changes none: nginx follows `current` per request).
extension Reconciler {
    /// What this pass wants in sites_dir for `app`: `.some(site)`, `.some(nil)` to remove its
    /// file, or nil to leave it alone (the manifest is invalid or unreadable: keep what serves).
    func nginxSite(for app: AppName, desired: DesiredApp) -> NginxSites.Site?? {
        guard config.nginx != nil else { return nil }
        let layout = layout(app)
        switch desired {
        case .removed, .notOnThisHost:
            return .some(nil)
        case .invalid, .unresolved, .untrusted:
            return nil
        case .resolved(let resolved):
            guard let frontend = resolved.manifest.frontend, let serve = frontend.serve else { return .some(nil) }
            let store = ReleaseStore(layout: layout)
            guard store.current() != nil else { return nil }
            do {
                try FrontendArchive(layout: layout).refresh(releases: store.releaseIDs())
            } catch {
                logger.warning("cannot refresh the frontend archive: \(error)", metadata: ["app": "\(app)"])
            }
            var upstream: NginxSite.Upstream?
            switch resolved.manifest.backend?.workers?.listen {
            case .tcp(let host, let port)?: upstream = .tcp(host: host, port: port)
            case .unix(let path)?: upstream = .unix(path: layout.root + "/" + path.value)
            case nil: upstream = nil
            }
            let text = NginxSite.render(app: app, serve: serve, appRoot: layout.root, archive: AppLayout.frontendArchiveName,
                                        upstream: upstream, source: resolved.manifestPath)
            return .some(NginxSites.Site(text: text, listen: serve.listen))
        }
    }

    /// Writes, checks and reloads; a refused config marks its app failed (the old config serves),
    /// and so does a new server block nginx did not take (`NginxSites.NotTaken`).
    func applyNginx(_ plan: NginxSites.Plan, known: Set<AppName>, state: inout AgentState, result: inout PassResult) async {
        guard let nginx = config.nginx else { return }
        let outcome = await NginxSites(nginx: nginx, stateDir: config.stateDir, logger: logger).apply(plan, known: known)
        if outcome.reloaded { metrics.nginxReloaded() }
        if !outcome.notTaken.isEmpty { metrics.nginxReloadFailed() }
        for (app, problem) in outcome.refused {
            metrics.nginxRefused(app: app)
            var status = state.apps[app.value] ?? AppStatus(condition: .failed)
            status.condition = .failed
            status.message = "nginx refused the new server block; the previous one keeps serving: \(problem)"
            state.apps[app.value] = status
            result.unsettled.append((app, status.message!))
        }
        for (app, why) in outcome.notTaken {
            var status = state.apps[app.value] ?? AppStatus(condition: .failed)
            status.condition = .failed
            status.message = Self.notTakenMessage(why, deadline: NginxListenCheck().deadline)
            state.apps[app.value] = status
            result.unsettled.append((app, status.message!))
        }
    }

    static func notTakenMessage(_ why: NginxSites.NotTaken, deadline: Duration) -> String {
        let retry = "the previous server block is back and the next pass tries again"
        switch why {
        case .reloadFailed(let problem):
            return "nginx reload failed: \(problem); \(retry)"
        case .unserved(let listen):
            return "nginx was reloaded, but none of its sockets listens on frontend.serve.listen \(listen) \(DurationText.format(deadline)) later: "
                + "nginx kept its previous configuration, most likely because it cannot bind that address (see nginx's error log, "
                + "and what holds the port: ss -tanp 'sport = :\(listen.bindAddress.port)'); \(retry)"
        case .notTakenWithout(let unserved):
            return "nginx did not take this app's new server block, even reloaded without \(NginxSites.describe(unserved)), "
                + "which it cannot bind; \(retry)"
        }
    }
}
