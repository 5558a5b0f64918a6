import Foundation

/// One agent per state directory: an exclusive flock on `state_dir/agent.lock`, holding the pid.
public final class AgentLock {
    public struct Held: Error, CustomStringConvertible {
        public var path: String
        public var pid: pid_t?

        public var description: String {
            let who = pid.map { "pid \($0)" } ?? "another process"
            return "another Slipway agent (\(who)) holds \(path); stop it first, or point --config at another state_dir"
        }
    }

    private let fd: Int32
    public let path: String

    private init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit {
        close(fd)
    }

    public static func acquire(stateDir: String) throws -> AgentLock {
        try FileOps.makeDirectories(stateDir, mode: 0o750)
        let path = stateDir + "/agent.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else { throw SystemError("opening lock", path: path) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw Held(path: path, pid: holder(stateDir: stateDir))
        }
        ftruncate(fd, 0)
        _ = try? FileOps.writeAll(fd, Array("\(getpid())\n".utf8), path: path)
        return AgentLock(fd: fd, path: path)
    }

    /// The pid of the running agent, or nil when no agent holds the lock.
    public static func holder(stateDir: String) -> pid_t? {
        let path = stateDir + "/agent.lock"
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) == 0 {
            flock(fd, LOCK_UN)
            return nil
        }
        guard let bytes = FileOps.readFile(path) else { return nil }
        return pid_t(String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
