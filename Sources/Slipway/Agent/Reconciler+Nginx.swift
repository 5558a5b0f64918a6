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
    /// and a reload that failed or did not take marks every app it carried failed.
    func applyNginx(_ plan: NginxSites.Plan, known: Set<AppName>, state: inout AgentState, result: inout PassResult) async {
        guard let nginx = config.nginx else { return }
        let outcome = await NginxSites(nginx: nginx, stateDir: config.stateDir, logger: logger).apply(plan, known: known)
        if outcome.reloaded { metrics.nginxReloaded() }
        if outcome.reloadError != nil { metrics.nginxReloadFailed() }
        for (app, problem) in outcome.refused {
            metrics.nginxRefused(app: app)
            var status = state.apps[app.value] ?? AppStatus(condition: .failed)
            status.condition = .failed
            status.message = "nginx refused the new server block; the previous one keeps serving: \(problem)"
            state.apps[app.value] = status
            result.unsettled.append((app, status.message!))
        }
        if let problem = outcome.reloadError {
            for app in outcome.changed {
                var status = state.apps[app.value] ?? AppStatus(condition: .failed)
                status.condition = .failed
                if let listen = outcome.unserved[app] {
                    let port = listen.probeAddress.port
                    status.message = "\(problem): nginx kept its previous configuration, most likely because it cannot bind frontend.serve.listen "
                        + "\(listen) (see nginx's error log, and what holds the port: ss -tanp 'sport = :\(port)'); "
                        + "the previous server block is back and the next pass tries again"
                } else if outcome.notTaken, outcome.unserved.isEmpty {
                    let hint = outcome.listens[app].map {
                        " (if it cannot bind frontend.serve.listen \($0), see what holds the port: ss -tanp 'sport = :\($0.probeAddress.port)')"
                    } ?? ""
                    status.message = "\(problem), so it kept its previous configuration: its error log says why\(hint); "
                        + "the previous server block is back and the next pass tries again"
                } else if outcome.unserved.isEmpty {
                    status.message = "nginx reload failed: \(problem); the previous server block is back and the next pass tries again"
                } else {
                    status.message = "\(problem), so nginx kept its previous configuration and this app's new server block did not take either; "
                        + "the previous one is back and the next pass tries again"
                }
                state.apps[app.value] = status
                result.unsettled.append((app, status.message!))
            }
        }
    }
}
