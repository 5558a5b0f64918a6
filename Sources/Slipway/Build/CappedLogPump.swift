import Foundation
import SlipwayCore

/// Copies build output from a pipe into its log file, keeping at most about `maxBytes` of it:
/// the head (everything until the file reaches `maxBytes` less the tail's share), then only
/// the newest `tailBytes` in memory, written after a line saying how much was cut when the log
/// closes. A build that floods its output keeps running (its writes never block for long, the
/// agent keeps reading) but cannot fill the state disk: a 1.6 s build once wrote 303 MB.
///
/// Runs on a thread of its own, never the cooperative pool. When the log closes, what is still
/// in the pipe is drained for at most a second; then the read end closes, so a stray process
/// that kept the pipe open gets EPIPE instead of a reader forever.
final class CappedLogPump: @unchecked Sendable {
    // @unchecked: `cut`, `written` and the tail ring are touched by the pump thread only, until
    // `finish()` has waited for that thread to end; the flags shared with callers are Mutexes.
    let writeFD: Int32
    let fileFD: Int32
    private let readFD: Int32
    private let path: String
    private let maxBytes: Int
    private let headLimit: Int
    private let tailBytes: Int
    private var written: Int
    private var cut = 0
    private var tail: UnsafeMutableRawBufferPointer
    private var tailStart = 0
    private var tailCount = 0
    private let stopping = Mutex(false)
    private let busy = Mutex(false)
    private let ended = DispatchSemaphore(value: 0)

    init(fileFD: Int32, path: String, maxBytes: Int) throws {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw SystemError("creating the build log's pipe", path: path) }
        // Children get the write end through dup2 in their spawn; no other child inherits either end.
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        readFD = fds[0]
        writeFD = fds[1]
        self.fileFD = fileFD
        self.path = path
        self.maxBytes = maxBytes
        tailBytes = min(1 << 20, max(maxBytes / 4, 1))
        headLimit = maxBytes - tailBytes
        var info = stat()
        written = fstat(fileFD, &info) == 0 ? Int(info.st_size) : 0
        tail = .allocate(byteCount: tailBytes, alignment: 1)
        let thread = Thread { [self] in pump() }
        thread.name = "slipway-build-log"
        thread.start()
    }

    deinit {
        tail.deallocate()
    }

    /// Waits (at most a second) until what writers put in the pipe so far is in the file.
    func settle() {
        for _ in 0..<200 {
            var pending: Int32 = 0
            if ioctl(readFD, UInt(FIONREAD), &pending) != 0 || pending == 0, !busy.withLock({ $0 }) { return }
            usleep(5_000)
        }
    }

    /// Closes the agent's write end, drains the pipe (bounded), writes the kept tail and closes the file.
    func finish() {
        Foundation.close(writeFD)
        stopping.withLock { $0 = true }
        ended.wait()
    }

    private func pump() {
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 1)
        defer { chunk.deallocate() }
        var drainDeadline: ContinuousClock.Instant?
        while true {
            if drainDeadline == nil, stopping.withLock({ $0 }) { drainDeadline = .now + .seconds(1) }
            if let drainDeadline, ContinuousClock.now >= drainDeadline { break }
            var entry = pollfd(fd: readFD, events: Int16(POLLIN), revents: 0)
            let ready = poll(&entry, 1, 50)
            if ready < 0 && errno == EINTR { continue }
            if ready <= 0 { if drainDeadline != nil { break } else { continue } }
            busy.withLock { $0 = true }
            let count = read(readFD, chunk.baseAddress, chunk.count)
            if count > 0 { consume(UnsafeRawBufferPointer(rebasing: chunk[0..<count])) }
            busy.withLock { $0 = false }
            if count == 0 || (count < 0 && errno != EINTR && errno != EAGAIN) { break }
        }
        Foundation.close(readFD)
        writeTail()
        Foundation.close(fileFD)
        ended.signal()
    }

    private func consume(_ bytes: UnsafeRawBufferPointer) {
        var bytes = bytes
        if written < headLimit {
            let room = min(headLimit - written, bytes.count)
            writeToFile(UnsafeRawBufferPointer(rebasing: bytes[0..<room]))
            bytes = UnsafeRawBufferPointer(rebasing: bytes[room...])
        }
        guard !bytes.isEmpty else { return }
        // Beyond the head: keep the newest tailBytes, count the rest as cut.
        if bytes.count >= tailBytes {
            cut += tailCount + bytes.count - tailBytes
            tail.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[(bytes.count - tailBytes)...]))
            tailStart = 0
            tailCount = tailBytes
            return
        }
        // Append to the ring in at most two copies; what it overwrites is cut.
        let overflow = max(0, tailCount + bytes.count - tailBytes)
        cut += overflow
        tailStart = (tailStart + overflow) % tailBytes
        tailCount -= overflow
        var source = bytes
        while !source.isEmpty {
            let end = (tailStart + tailCount) % tailBytes
            let run = min(source.count, tailBytes - end)
            UnsafeMutableRawBufferPointer(rebasing: tail[end..<(end + run)]).copyMemory(from: UnsafeRawBufferPointer(rebasing: source[0..<run]))
            tailCount += run
            source = UnsafeRawBufferPointer(rebasing: source[run...])
        }
    }

    private func writeTail() {
        guard tailCount > 0 else { return }
        if cut > 0 {
            let note = "\n[slipway: \(cut) bytes of output cut here; build logs keep at most build_log_max = \(ByteSize.format(UInt64(maxBytes))), the head and the last \(ByteSize.format(UInt64(tailBytes)))]\n"
            Array(note.utf8).withUnsafeBytes { writeToFile($0) }
        }
        let first = min(tailCount, tailBytes - tailStart)
        writeToFile(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(tail)[tailStart..<(tailStart + first)]))
        if first < tailCount {
            writeToFile(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(tail)[0..<(tailCount - first)]))
        }
    }

    private func writeToFile(_ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < bytes.count {
            let count = write(fileFD, bytes.baseAddress! + offset, bytes.count - offset)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return }  // disk full: the build goes on, its log is what it is
            offset += count
        }
        written += bytes.count
    }
}
