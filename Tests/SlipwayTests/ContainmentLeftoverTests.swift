import Foundation
import Testing
@testable import Slipway
@testable import SlipwayCore

/// What agents killed with `kill -9` leave in this host's cgroups, on real groups and processes:
/// a dead agent's step is killed with all it forked, its serving worker is not, a live agent's
/// groups are never touched, and a worker's group is read back only when it is a worker's.
@Suite(.enabled(if: geteuid() == 0 && Containment.base != nil, "needs root and a writable cgroup v2"), .timeLimit(.minutes(1)))
struct ContainmentLeftoverTests {
    /// A base of this test's own below the host's: every agent that starts on this host sweeps
    /// the host's base, and would take this test's "dead agent" groups from under it.
    let base: String

    init() {
        base = Containment.base! + "/leftover-test-\(getpid())-\(String(UInt64.random(in: 0...UInt64.max), radix: 36))"
        mkdir(base, 0o755)
    }

    func removeBase() {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? [] where LeftoverGroup(name: name) != nil {
            rmdir(base + "/" + name)
        }
        rmdir(base)
    }

    /// A pid no process has now: one that just ran and was reaped.
    func deadPID() async throws -> pid_t {
        let child = try ChildProcess.spawn(argv: ["/bin/true"], environment: [], directory: "/", stdout: 2, stderr: 2)
        #expect(await child.wait(timeout: .seconds(10)) == .exited(0))
        return child.pid
    }

    /// A group of that name under the base, holding `sh -c script` (moved in before it runs).
    func group(_ name: String, running script: String) throws -> (directory: String, leader: pid_t) {
        let directory = base + "/" + name
        #expect(mkdir(directory, 0o755) == 0)
        let argv = Containment.adopt(directory: directory).wrap(["/bin/sh", "-c", script])
        return (directory, try ChildProcess.spawn(argv: argv, environment: ["PATH=/usr/bin:/bin"], directory: "/", stdout: 2, stderr: 2).pid)
    }

    func eventually(_ condition: () -> Bool) async -> Bool {
        for _ in 0..<200 {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(25))
        }
        return condition()
    }

    func cleanUp(_ directory: String, tag: Int) {
        Containment.write("1", to: directory + "/cgroup.kill")
        for pid in ContainmentTests.strays(tag) { kill(pid, SIGKILL) }
        for _ in 0..<100 where rmdir(directory) != 0 && errno == EBUSY { usleep(20_000) }
        removeBase()
    }

    @Test func aDeadAgentsStepIsKilledWithWhatLeftItsSessionAndItsGroupRemoved() async throws {
        let tag = Int.random(in: 700_000...709_999) * 2
        let name = "step-\(try await deadPID())-\(String(UInt64.random(in: 0...UInt64.max), radix: 36))"
        let (directory, _) = try group(name, running: "env -i setsid sleep \(tag) & exec sleep \(tag + 1)")
        defer { cleanUp(directory, tag: tag) }
        #expect(await eventually { ContainmentTests.strays(tag).count == 2 }, "the step never started: the test proves nothing")

        let sweep = Containment.sweepLeftovers(in: base)
        #expect(sweep.killed.contains(name))
        #expect(sweep.removed.contains(name))
        #expect(await eventually { ContainmentTests.strays(tag).isEmpty }, "left running: \(ContainmentTests.strays(tag))")
        #expect(access(directory, F_OK) != 0, "the group is still there")
    }

    @Test func aDeadAgentsWorkerServesOnAndItsGroupGoesOnceEmpty() async throws {
        let tag = Int.random(in: 710_000...719_999) * 2
        let name = "w0-\(try await deadPID())-\(String(UInt64.random(in: 0...UInt64.max), radix: 36))"
        let (directory, _) = try group(name, running: "exec sleep \(tag)")
        defer { cleanUp(directory, tag: tag) }
        #expect(await eventually { ContainmentTests.strays(tag).count == 1 })

        let sweep = Containment.sweepLeftovers(in: base)
        #expect(!sweep.killed.contains(name) && !sweep.removed.contains(name))
        #expect(ContainmentTests.strays(tag).count == 1, "a worker that serves was stopped")

        for pid in ContainmentTests.strays(tag) { kill(pid, SIGKILL) }
        #expect(await eventually { Containment.isEmpty(directory) })
        #expect(Containment.sweepLeftovers(in: base).removed.contains(name))
        #expect(access(directory, F_OK) != 0)
    }

    @Test func aLiveAgentsGroupsAreNeverTouched() async throws {
        let tag = Int.random(in: 720_000...729_999) * 2
        // This process stands for the live agent: its step runs, and its empty worker group may
        // be one it has just made and is about to move a worker into.
        let live = "step-\(getpid())-\(String(UInt64.random(in: 0...UInt64.max), radix: 36))"
        let empty = base + "/w3-\(getpid())-\(String(UInt64.random(in: 0...UInt64.max), radix: 36))"
        let (directory, _) = try group(live, running: "exec sleep \(tag)")
        #expect(mkdir(empty, 0o755) == 0)
        defer {
            cleanUp(directory, tag: tag)
            rmdir(empty)
        }
        #expect(await eventually { ContainmentTests.strays(tag).count == 1 })
        let sweep = Containment.sweepLeftovers(in: base)
        #expect(!sweep.killed.contains(live))
        #expect(ContainmentTests.strays(tag).count == 1)
        #expect(access(empty, F_OK) == 0)
    }

    @Test func aWorkersGroupIsReadBackOnlyWhenItIsAWorkersUnderTheBase() async throws {
        let tag = Int.random(in: 730_000...739_999) * 2
        let worker = "w1-\(try await deadPID())-abc"
        let step = "step-\(try await deadPID())-abc"
        let (workerGroup, workerPID) = try group(worker, running: "exec sleep \(tag)")
        let (stepGroup, stepPID) = try group(step, running: "exec sleep \(tag + 1)")
        defer {
            cleanUp(workerGroup, tag: tag)
            cleanUp(stepGroup, tag: tag)
        }
        #expect(await eventually { ContainmentTests.strays(tag).count == 2 })
        #expect(Containment.ofWorker(workerPID, base: base)?.directory == workerGroup)
        #expect(Containment.ofWorker(stepPID, base: base) == nil)
        // This test's own process is in no group of the base.
        #expect(Containment.ofWorker(getpid(), base: base) == nil)
        #expect(Containment.ofWorker(try await deadPID(), base: base) == nil)
    }
}
