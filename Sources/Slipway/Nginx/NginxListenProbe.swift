import NIOCore
import NIOPosix
import SlipwayCore

/// Did nginx take a reload, where its master cannot be read (no `nginx.pid_file`)? `nginx -s
/// reload` (and `systemctl reload nginx`) only signal the master and exit 0 whatever it then
/// makes of the new configuration: a master that cannot bind a new `listen` keeps its old
/// configuration and says so in its error log only. So the agent connects to each changed app's
/// `frontend.serve.listen`, retrying until nginx has bound it or the deadline passes. Where the
/// master's new workers decided it (`NginxMaster`), one try each names the addresses nothing
/// serves.
///
/// A listen that already served before the reload (another server block on port 80, another
/// program on the port) answers either way: this catches the address that nothing serves, not
/// every refusal.
struct NginxListenProbe: Sendable {
    /// A reload binds in milliseconds; the rest is margin for a saturated host. Only a reload
    /// that did not take waits this long.
    var deadline: Duration = .seconds(10)
    var interval: Duration = .milliseconds(25)

    /// The listens nothing accepted a connection on before the deadline (with `once`, at a single
    /// try); each address is probed once, side by side with the others.
    func unserved(_ listens: [AppName: ServeListen], once: Bool = false) async -> [AppName: ServeListen] {
        let byAddress = Dictionary(listens.values.map { ($0.description, $0) }, uniquingKeysWith: { first, _ in first })
        let failed: Set<String> = await withTaskGroup(of: String?.self) { group in
            for (address, listen) in byAddress {
                group.addTask { await (once ? self.accepts(listen) : self.acceptsBeforeDeadline(listen)) ? nil : address }
            }
            var failed: Set<String> = []
            for await address in group { if let address { failed.insert(address) } }
            return failed
        }
        return listens.filter { failed.contains($0.value.description) }
    }

    private func acceptsBeforeDeadline(_ listen: ServeListen) async -> Bool {
        let end = ContinuousClock.now + deadline
        while true {
            if await accepts(listen) { return true }
            guard ContinuousClock.now + interval < end, !Task.isCancelled else { return false }
            try? await Task.sleep(for: interval)
        }
    }

    /// One connection, closed at once: nginx answers nothing and logs nothing for it.
    private func accepts(_ listen: ServeListen) async -> Bool {
        let (host, port) = listen.probeAddress
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(1))
                .connect(host: host, port: port).get()
            try? await channel.close()
            return true
        } catch {
            return false
        }
    }
}
