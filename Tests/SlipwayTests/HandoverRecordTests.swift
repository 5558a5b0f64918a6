import Foundation
import Testing
@testable import Slipway
@testable import SlipwayCore

/// Issue 19: the record a re-executing agent hands its next image.
@Suite struct HandoverRecordTests {
    static func record() throws -> HandoverRecord {
        let release = try #require(ReleaseID("20261201T120000Z-abc1234"))
        let worker = HandoverRecord.Worker(slot: 1, pid: 4242, procStartTime: 99, generation: "f1066f495b11050e", release: release,
                                           startedAt: UTCTime(millisecondsSinceEpoch: 1_700_000_000_000), uptimeSeconds: 12.5,
                                           ready: true, status: "serving", restarts: 2, stdoutFD: 17, stderrFD: 18,
                                           notifyFD: 19, notifyPath: "/srv/app/.slipway/notify/w1-3.sock", ownSocketFD: 20,
                                           ownSocketPort: 40001, containment: "/sys/fs/cgroup/slipway/w1-1-x")
        return HandoverRecord(version: HandoverRecord.currentVersion, requestedAt: 1_700_000_100, processStartedAt: .now, reexecs: 3,
                              failedReexecs: 1, apiPort: 7070,
                              apps: [.init(app: "demo", listener: .init(fd: 12, host: "127.0.0.1", port: 8000, unix: nil, path: nil),
                                           degraded: nil, workers: [worker]),
                                     .init(app: "api", listener: .init(fd: 13, host: nil, port: nil, unix: "run/app.sock", path: "/srv/api/run/app.sock"),
                                           degraded: "crash loop", workers: [])])
    }

    @Test func aRecordReadsBackAsWrittenAndNamesExactlyItsFds() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("handover-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let record = try Self.record()
        try record.save(stateDir: directory)
        let path = HandoverRecord.path(stateDir: directory)
        #expect(try HandoverRecord.load(path: path) == record)
        #expect(record.fds.sorted() == [12, 13, 17, 18, 19, 20])
        #expect(record.workerCount == 1)
        var info = stat()
        #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o600)
        #expect(record.apps[0].listener?.address == .tcp(host: "127.0.0.1", port: 8000))
        #expect(record.apps[1].listener?.address == RelativePath("run/app.sock").map { .unix($0) })
    }

    @Test func anUnknownVersionADamagedOrAMissingRecordIsRefusedWithWhy() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("handover-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/handover.json"
        #expect(throws: HandoverError.self) { try HandoverRecord.load(path: path) }
        try #"{"version": 2, "apps": []}"#.write(toFile: path, atomically: true, encoding: .utf8)
        let newer = #expect(throws: HandoverError.self) { try HandoverRecord.load(path: path) }
        #expect(newer?.description.contains("version 2; this image reads version 1") == true)
        try #"{"version": 1, "apps": [{"app": 3}]}"#.write(toFile: path, atomically: true, encoding: .utf8)
        let damaged = #expect(throws: HandoverError.self) { try HandoverRecord.load(path: path) }
        #expect(damaged?.description.contains("damaged") == true)
        try "not json".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: HandoverError.self) { try HandoverRecord.load(path: path) }
    }

    @Test func theHandoverGateWaitsForTheWatcherAndHoldsItOutUntilResumed() async throws {
        let gate = HandoverGate()
        let entered = Mutex(0)
        gate.enter()
        let watcher = Thread {
            gate.enter()
            entered.withLock { $0 += 1 }
            gate.leave()
        }
        // pause() must wait for the first holder to leave.
        let paused = Mutex(false)
        let pauser = Thread {
            gate.pause()
            paused.withLock { $0 = true }
        }
        pauser.start()
        usleep(50_000)
        #expect(!paused.withLock { $0 })
        gate.leave()
        for _ in 0..<100 where !paused.withLock({ $0 }) { usleep(10_000) }
        #expect(paused.withLock { $0 })
        watcher.start()
        usleep(50_000)
        #expect(entered.withLock { $0 } == 0)
        gate.resume()
        for _ in 0..<100 where entered.withLock({ $0 }) == 0 { usleep(10_000) }
        #expect(entered.withLock { $0 } == 1)
    }
}
