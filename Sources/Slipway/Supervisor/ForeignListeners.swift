import Foundation
import SlipwayCore

/// Who else listens where an app's workers are to listen. The agent binds with `SO_REUSEPORT`
/// (so a restarted agent can bind while a crashed one's workers still serve); as root that would
/// also let it join a root service's listening socket and take half its connections. So before
/// binding, the TCP tables (`/proc/net/tcp{,6}`) are read for a listening socket on an address
/// that overlaps, and each one's holders (the processes with its inode among their fds) must be
/// this agent's own workers: a process carrying the worker marker (`SLIPWAY_SUPERVISED`) or in a
/// worker's cgroup, not running as root when the agent is. A holder that is exiting is waited for,
/// and the tables read again. Anything else is refused, naming the holder.
enum ForeignListeners {
    struct Holder: Sendable, Equatable, CustomStringConvertible {
        var pid: pid_t
        var command: String
        var description: String { "pid \(pid) (\(command))" }
    }

    struct Refused: Error, CustomStringConvertible {
        var address: WorkerListen
        /// Empty: a socket whose holder could not be seen.
        var holders: [Holder]

        var description: String {
            let who = holders.isEmpty ? "a process Slipway cannot see" : holders.map(\.description).joined(separator: ", ")
            return "backend.listen \(address): another program already listens there, \(who), and it is not one of Slipway's workers; "
                + "Slipway never joins a listening socket it did not make (SO_REUSEPORT would hand the app that program's connections) — "
                + "stop that program or give the app another port"
        }
    }

    /// One row of /proc/net/tcp{,6} in the LISTEN state.
    struct Listening: Equatable {
        var address: [UInt8]
        var port: Int
        var inode: UInt64
    }

    /// Throws `Refused` when a program other than this agent's workers listens on an address
    /// overlapping `socketAddress` (what `bind` is about to be given).
    static func check(_ socketAddress: UnsafePointer<sockaddr>, _ address: WorkerListen) throws {
        guard let (bytes, port) = Self.bytesAndPort(socketAddress) else { return }
        let deadline = ContinuousClock.now + WorkerMarker.chainPatience
        // A wait for a worker's chain leaves time for another listener to appear: the tables
        // are read again after one (the deadline past by then or not, a second wait is short).
        var waited = true
        while waited {
            waited = false
            // The agent's own app sockets (another address of an app moving) are not foreign.
            let own = TCPListeners.shared.inodes()
            let overlapping = listening().filter { $0.port == port && overlaps($0.address, bytes) && !own.contains($0.inode) }
            guard !overlapping.isEmpty else { return }
            let holders = holders(of: Set(overlapping.map(\.inode)))
            let foreign = holders.filter { !isOwnWorker($0.pid, until: deadline, waited: &waited) }
            // As root every holder is visible; unseen holders are refused too (never guessed to be ours).
            if !foreign.isEmpty || (holders.isEmpty && geteuid() == 0) {
                throw Refused(address: address, holders: foreign)
            }
        }
    }

    /// An address's bytes, IPv4-mapped IPv6 reduced to IPv4, and its port.
    static func bytesAndPort(_ pointer: UnsafePointer<sockaddr>) -> ([UInt8], Int)? {
        switch Int32(pointer.pointee.sa_family) {
        case AF_INET:
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { v4 in
                (withUnsafeBytes(of: v4.pointee.sin_addr) { Array($0) }, Int(UInt16(bigEndian: v4.pointee.sin_port)))
            }
        case AF_INET6:
            return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { v6 in
                (normalized(withUnsafeBytes(of: v6.pointee.sin6_addr) { Array($0) }), Int(UInt16(bigEndian: v6.pointee.sin6_port)))
            }
        default:
            return nil
        }
    }

    static func normalized(_ bytes: [UInt8]) -> [UInt8] {
        if bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff { return Array(bytes[12...]) }
        return bytes
    }

    /// Same address, or either side a wildcard (of any family: a `[::]` socket is dual-stack
    /// unless it says otherwise, which the table does not show; overlap is assumed).
    static func overlaps(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        a == b || a.allSatisfy { $0 == 0 } || b.allSatisfy { $0 == 0 }
    }

    /// Listening sockets of this network namespace.
    static func listening() -> [Listening] {
        ["/proc/net/tcp", "/proc/net/tcp6"].flatMap { path -> [Listening] in
            guard let bytes = FileOps.readFile(path) else { return [] }
            return String(decoding: bytes, as: UTF8.self).split(separator: "\n").dropFirst().compactMap(parse)
        }
    }

    /// `sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...`; the
    /// address is printed as 32-bit words in host order.
    static func parse(_ line: Substring) -> Listening? {
        let fields = line.split(separator: " ")
        guard fields.count > 9, fields[3] == "0A" else { return nil }
        let local = fields[1].split(separator: ":")
        guard local.count == 2, let port = Int(local[1], radix: 16), let inode = UInt64(fields[9]), local[0].count % 8 == 0 else { return nil }
        var address: [UInt8] = []
        var index = local[0].startIndex
        while index < local[0].endIndex {
            let end = local[0].index(index, offsetBy: 8)
            guard let word = UInt32(local[0][index..<end], radix: 16) else { return nil }
            address += withUnsafeBytes(of: word) { Array($0) }
            index = end
        }
        return Listening(address: normalized(address), port: port, inode: inode)
    }

    /// Every process with one of `inodes` among its fds.
    static func holders(of inodes: Set<UInt64>) -> [Holder] {
        let wanted = Set(inodes.map { "socket:[\($0)]" })
        var found: [Holder] = []
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(name), let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") else { continue }
            guard fds.contains(where: { FileOps.readLink("/proc/\(pid)/fd/\($0)").map(wanted.contains) == true }) else { continue }
            let command = FileOps.readFile("/proc/\(pid)/comm").map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
            found.append(Holder(pid: pid, command: command ?? "?"))
        }
        return found.sorted { $0.pid < $1.pid }
    }

    /// A worker of this or a previous agent (an orphan still serving after a crash), or a process
    /// a worker started that kept the socket: it carries the marker or runs in a worker's cgroup
    /// (a helper started with `env -i` has no marker; only root can place a process in one of
    /// those groups, so only a worker's own tree is in it) and, under a root agent, does not run
    /// as root (workers never do, once their spawn chain has dropped to the app's account:
    /// `WorkerMarker.runsAsAccount`).
    static func isOwnWorker(_ pid: pid_t, until deadline: ContinuousClock.Instant, waited: inout Bool) -> Bool {
        guard pid != getpid() else { return false }
        if ProcessTable.isExiting(pid) { return waitForExit(pid, until: deadline, waited: &waited) }
        let prefix = Array("\(WorkerMarker.variable)=".utf8)
        let marked = WorkerMarker.environment(of: pid).map { $0.split(separator: 0).contains { $0.starts(with: prefix) } } ?? false
        guard marked || Containment.ofWorker(pid) != nil else { return false }
        return geteuid() != 0 || WorkerMarker.runsAsAccount(pid, until: deadline, waited: &waited)
    }

    /// A holder on its way out has nothing left to judge it by (its memory, environment and
    /// program go first, while the exit frees them, its files last: 85 ms for a 1 GB worker here)
    /// and lets go of the socket in a moment: a worker an agent killed right after starting it,
    /// whose first act failed. It is waited for (until `deadline`), and the tables are read again;
    /// one still there then is refused. Before, it was refused at once, and the reload with it.
    static func waitForExit(_ pid: pid_t, until deadline: ContinuousClock.Instant, waited: inout Bool) -> Bool {
        while ProcessTable.isExiting(pid) {
            guard ContinuousClock.now < deadline else { return false }
            usleep(2_000)
        }
        waited = true
        return true
    }
}
