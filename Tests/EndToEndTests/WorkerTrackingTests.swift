import Foundation
import Testing

/// Nested in WorkerHealthTests, whose `.serialized` covers it: one of these long blocking tests
/// at a time, so they hold one of the test pool's threads, not two.
extension WorkerHealthTests {
    /// Every worker tracked, whatever was killed when: `kill -9` of the agent at random points of
    /// rollouts (deploys that prune, reloads) ends each time with exactly `instances` workers, all
    /// of the current release, all in the table.
    @Suite(.endToEnd)
    struct WorkerTrackingTests {
        @Test func killingTheAgentAtThirtyRandomPointsOfRolloutsLeavesExactlyInstancesTrackedWorkers() throws {
            let app = try TinyApp.make(instances: 2, keep: 2)
            try app.start()
            let releases = app.f.appsRoot + "/demo/releases"
            var delays: [Int] = []
            for iteration in 0..<30 {
                // Even iterations deploy a new commit (keep: 2, so older releases are pruned while
                // workers of theirs may still run); odd ones reload every worker.
                if iteration % 2 == 0 { try app.f.commitSource(["VERSION": "v\(iteration)"], message: "v\(iteration)") }
                let trigger = try app.f.launch(iteration % 2 == 0 ? ["deploy", "demo", "--wait"] : ["reload", "demo"])
                let delay = Int.random(in: 0...900)
                delays.append(delay)
                usleep(UInt32(delay) * 1000)
                kill(app.agent.processIdentifier, SIGKILL)
                app.agent.waitUntilExit()
                if trigger.isRunning { kill(trigger.processIdentifier, SIGKILL) }
                trigger.waitUntilExit()

                let restarted = Date()
                try app.start()
                var seen: (leaders: [Int32: String], table: Set<Int32>, current: String?) = ([:], [], nil)
                let settled = app.f.waitUntil(seconds: 30) {
                    let current = app.f.current()
                    let leaders = WorkerProcesses.leaders(under: releases)
                    let table = (try? app.workerPIDs()) ?? []
                    seen = (leaders, table, current)
                    // The new agent's own first pass has finished, and converged.
                    guard let current, let status = try? app.f.statusJSON(), let pass = status["lastPass"] as? [String: Any],
                          pass["converged"] as? Bool == true, let started = (pass["startedAt"] as? String).flatMap(Self.time),
                          started >= restarted.addingTimeInterval(-0.01) else { return false }
                    return leaders.count == 2 && Set(leaders.keys) == table && leaders.values.allSatisfy { $0 == "\(releases)/\(current)/backend" }
                }
                #expect(settled, "iteration \(iteration), killed \(delay) ms into the rollout: \(seen.leaders.count) workers \(seen.leaders), table \(seen.table.sorted()), current \(seen.current ?? "-")\n\(app.agentLog.suffix(3000))")
                if !settled { break }
            }
            print("kill -9 at \(delays.count) points (ms into a rollout): \(delays)")
            #expect(app.stop(), "the agent did not exit on SIGTERM")
            #expect(WorkerProcesses.leaders(under: releases).isEmpty)
        }

        /// A kill -9 in the middle of a fetch leaves libgit2's lock on the mirror's ref, and every
        /// later fetch failed ("failed to lock file …/refs/heads/main.lock"): the app stayed on its
        /// release whatever was pushed (seen in the test above). The next agent removes the locks at
        /// its start, and the push deploys.
        @Test func aFetchKilledHalfwayLeavesNoLockThatStopsTheNextDeploy() throws {
            let app = try TinyApp.make(instances: 1, keep: 2)
            try app.start()
            kill(app.agent.processIdentifier, SIGKILL)
            app.agent.waitUntilExit()
            let sources = app.f.stateDir + "/mirrors/sources"
            let mirror = try #require(try FileManager.default.contentsOfDirectory(atPath: sources).first { $0.hasSuffix(".git") })
            let lock = "\(sources)/\(mirror)/refs/heads/main.lock"
            try "0000000000000000000000000000000000000000\n".write(toFile: lock, atomically: false, encoding: .utf8)
            try app.start()
            let deploy = try app.deployNewVersion("v2")
            #expect(deploy.status == 0, "\(deploy.stdout)\n\(deploy.stderr)\n\(app.agentLog.suffix(3000))")
            #expect((try? app.get("/").release) == app.f.current())
            #expect(!FileManager.default.fileExists(atPath: lock))
            #expect(app.agentLog.contains("removed the lock files a killed agent left in its git mirrors"))
            #expect(app.stop())
        }

        /// Another program took the app's port while the agent was down: the workers cannot start,
        /// and the status says who holds it. That is the host's fault, not the release's: once the
        /// program is stopped, the next poll (SIGHUP here) brings the workers up with no command.
        /// Before, the generation was remembered as failed and never tried again until the
        /// manifest, the env_file or the release changed, or an operator ran `slipway reload`.
        @Test func aPortAnotherProgramHeldIsTakenOnTheFirstPassAfterItIsFree() throws {
            let app = try TinyApp.make(instances: 1, keep: 2)
            try app.start()
            #expect(app.stop())
            let squatter = Process()
            squatter.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            squatter.arguments = ["-c", "import socket, time; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', \(app.port))); s.listen(); print('up', flush=True); time.sleep(120)"]
            let out = Pipe()
            squatter.standardOutput = out
            try squatter.run()
            defer { if squatter.isRunning { kill(squatter.processIdentifier, SIGKILL) }; squatter.waitUntilExit() }
            _ = out.fileHandleForReading.availableData
            try app.start(waiting: false)
            var message = ""
            #expect(app.f.waitUntil(seconds: 30) {
                message = (try? app.f.appStatus())?["message"] as? String ?? ""
                return message.contains("pid \(squatter.processIdentifier) (python3), and it is not one of Slipway's workers")
            }, "status said: \(message)\n\(app.agentLog.suffix(3000))")
            #expect(message.contains("tried again on every pass"), "\(message)")
            kill(squatter.processIdentifier, SIGKILL)
            squatter.waitUntilExit()
            kill(app.agent.processIdentifier, SIGHUP)
            #expect(app.f.waitUntil(seconds: 30) {
                (try? app.get("/").status) == 200 && ((try? app.workers()) ?? []).map { $0["state"] as? String } == ["ready"]
            }, "the workers never came up once the port was free: \((try? app.f.appStatus())?["message"] ?? "-")\n\(app.agentLog.suffix(3000))")
            #expect(app.stop())
        }

        static func time(_ text: String) -> Date? {
            let format = ISO8601DateFormatter()
            format.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            return format.date(from: text)
        }

        /// As an attacker: the marker can be copied into any environment, so a process running as
        /// root that carries it (a setuid program an app started with its own environment) must not
        /// be taken for a worker and stopped by the root agent.
        @Test func aRootProcessCarryingACopiedMarkerIsNotStopped() throws {
            guard geteuid() == 0 else { return }
            let app = try TinyApp.make(instances: 2, keep: 2)
            try app.start()
            let current = try #require(app.f.current())
            let marker = "SLIPWAY_SUPERVISED=\(app.f.stateDir)/workers/demo.json"
            let decoy = Process()
            decoy.executableURL = URL(fileURLWithPath: "/usr/bin/setsid")
            decoy.arguments = ["/usr/bin/env", marker, "SLIPWAY_RELEASE=\(current)", "SLIPWAY_WORKER=0", "/bin/sleep", "300"]
            decoy.standardOutput = FileHandle.nullDevice
            decoy.standardError = FileHandle.nullDevice
            try decoy.run()
            var decoyPID: Int32?
            #expect(app.f.waitUntil(seconds: 10) {
                decoyPID = Self.processes(carrying: marker).first { (try? String(contentsOfFile: "/proc/\($0)/cmdline", encoding: .utf8))?.hasPrefix("/bin/sleep") == true }
                return decoyPID != nil
            })
            let pid = try #require(decoyPID)
            defer { kill(pid, SIGKILL) }
            let workers = try app.workerPIDs()
            kill(app.agent.processIdentifier, SIGKILL)
            app.agent.waitUntilExit()
            try app.start()
            // The real orphans are replaced and stopped; the root decoy is left alone.
            #expect(app.f.waitUntil(seconds: 30) { workers.allSatisfy { !WorkerApp.isRunning($0) } }, "\(app.workerLog)")
            #expect(WorkerApp.isRunning(pid), "the root process with a copied marker was stopped")
            #expect(app.stop())
        }

        /// kill -9 of the agent leaves its workers serving; the next agent stops them once its own
        /// are up, and with them a helper each started outside its process group and session
        /// (`env -i setsid`: no marker, no group, only the worker's cgroup holds it), and removes
        /// their groups. Before, such a helper outlived its worker for good.
        @Test func aWorkerLeftByAKilledAgentEndsWithTheHelperItStartedOutsideItsSession() throws {
            guard geteuid() == 0 else { return }
            let tag = Int.random(in: 740_000...749_999) * 2
            let app = try TinyApp.make(instances: 2, keep: 2)
            try app.f.commitSource(["run.sh": "env -i setsid sleep \(tag) </dev/null >/dev/null 2>&1 &\nexec /usr/bin/python3 -u worker.py\n"],
                                   message: "a worker with a helper")
            try app.f.commitManifest("demo.yaml", """
            app: demo
            source: {repo: \(app.f.sourceRepo), ref: main}
            backend:
              command: /bin/sh run.sh
              instances: 2
              listen: 127.0.0.1:\(app.port)
              ready: {notify: true, timeout: 10s}
              health: {path: /}
              stop: {signal: SIGTERM, timeout: 3s}
            """)
            try app.start()
            defer { for pid in HardeningTests.strays(tag) { kill(pid, SIGKILL) } }
            #expect(app.f.waitUntil(seconds: 10) { HardeningTests.strays(tag).count == 2 }, "the helpers never ran: the test proves nothing")
            let helpers = Set(HardeningTests.strays(tag))
            let workers = try app.workerPIDs()
            let groups = Set(workers.compactMap(FailureTests.cgroupDirectory))
            #expect(groups.count == 2 && groups.allSatisfy { access($0, F_OK) == 0 }, "\(groups)")

            kill(app.agent.processIdentifier, SIGKILL)
            app.agent.waitUntilExit()
            try app.start()
            #expect(app.f.waitUntil(seconds: 30) { workers.allSatisfy { !WorkerApp.isRunning($0) } }, "\(app.agentLog.suffix(3000))\n\(app.workerLog.suffix(2000))")
            #expect(app.f.waitUntil(seconds: 10) { helpers.allSatisfy { !WorkerApp.isRunning($0) } },
                    "the old workers' helpers outlived them: \(helpers.filter(WorkerApp.isRunning))")
            #expect(app.f.waitUntil(seconds: 10) { groups.allSatisfy { access($0, F_OK) != 0 } }, "the old workers' groups are left: \(groups)")
            // The new workers' helpers end with them when the agent stops, and so do their groups.
            let newGroups = Set(try app.workerPIDs().compactMap(FailureTests.cgroupDirectory))
            #expect(newGroups.count == 2 && newGroups.isDisjoint(with: groups), "\(newGroups)")
            #expect(app.stop())
            #expect(app.f.waitUntil(seconds: 10) { HardeningTests.strays(tag).isEmpty }, "left running: \(HardeningTests.strays(tag))")
            #expect(newGroups.allSatisfy { access($0, F_OK) != 0 }, "the stopped agent left its workers' groups: \(newGroups)")
        }

        static func processes(carrying entry: String) -> [Int32] {
            ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { name -> Int32? in
                guard let pid = Int32(name), let environ = FileManager.default.contents(atPath: "/proc/\(name)/environ") else { return nil }
                return environ.split(separator: 0).contains { $0.elementsEqual(Array(entry.utf8)) } ? pid : nil
            }
        }
    }
}
