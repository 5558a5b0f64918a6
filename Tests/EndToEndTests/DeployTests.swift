import Foundation
import Testing

/// The core deploy flow, driving the built binary against real git repos in a temp dir.
@Suite(.endToEnd)
struct DeployTests {
    @Test func firstDeployPublishesAReleaseAndPointsCurrentAtIt() throws {
        let f = try Fixture()
        let sha = try f.commitSource(["index.html": "<h1>v1</h1>", "server.js": "console.log(1)", "bin/run": "#!/bin/sh\n"],
                                     executable: ["bin/run"])
        try f.git(["-C", f.sourceRepo, "tag", "v1"])
        try f.commitManifest("demo.yaml", f.manifest(ref: "v1", extra: "shared: [storage]\nenv: {GREETING: hello}"))

        let result = try f.pass()
        #expect(result.status == 0, "\(result.output)")
        let releases = f.releases()
        #expect(releases.count == 1)
        let id = try #require(releases.first)
        #expect(id.hasSuffix("-" + sha.prefix(7)))
        #expect(f.current() == id)
        #expect(f.currentFile("frontend/index.html") == "<h1>v1</h1>")
        #expect(f.currentFile("backend/server.js") == "console.log(1)")
        #expect(f.currentFile("backend/BUILT") == "backend built\n")
        // The executable bit survives the export; shared dirs are links to <app>/shared.
        #expect(FileManager.default.isExecutableFile(atPath: "\(f.appsRoot)/demo/current/backend/bin/run"))
        let link = try FileManager.default.destinationOfSymbolicLink(atPath: "\(f.appsRoot)/demo/current/backend/storage")
        #expect(link == "\(f.appsRoot)/demo/shared/storage")
        // release.json records where the release came from.
        let record = try #require(f.currentFile("release.json"))
        #expect(record.contains(sha))
        #expect(record.contains("\"result\" : \"succeeded\""))
        #expect(record.contains("manifests/demo.yaml"))
        // current is a relative symlink into releases/.
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "\(f.appsRoot)/demo/current") == "releases/\(id)")
        #expect(f.stagingEntries().isEmpty)

        // Metrics in Prometheus text format, named by stage.
        let metrics = f.read(f.stateDir + "/metrics.prom") ?? ""
        #expect(metrics.contains("# TYPE slipway_deploys_total counter"))
        #expect(metrics.contains("slipway_deploys_total{app=\"demo\",result=\"succeeded\"} 1"))
        #expect(metrics.contains("slipway_stage_duration_seconds_count{stage=\"build\"} 1"))
        #expect(metrics.contains("slipway_passes_total 1"))
    }

    @Test func changingTheRefDeploysTheNewCommitAndAnUnchangedPassIsANoOp() throws {
        let f = try Fixture()
        let first = try f.commitSource(["index.html": "one"])
        try f.commitManifest("demo.yaml", f.manifest(ref: first))
        #expect(try f.pass().status == 0)
        let firstRelease = try #require(f.current())

        // Idempotent: nothing changed, nothing rebuilt, no new release, no new build log.
        let logsBefore = try FileManager.default.contentsOfDirectory(atPath: f.stateDir + "/logs/demo")
        let noop = try f.pass()
        #expect(noop.status == 0)
        #expect(f.releases() == [firstRelease])
        #expect(try FileManager.default.contentsOfDirectory(atPath: f.stateDir + "/logs/demo") == logsBefore)
        #expect(!noop.stderr.contains("deploying"))

        let second = try f.commitSource(["index.html": "two"])
        try f.commitManifest("demo.yaml", f.manifest(ref: second))
        #expect(try f.pass().status == 0)
        #expect(f.releases().count == 2)
        #expect(f.current() != firstRelease)
        #expect(f.current()?.hasSuffix(String(second.prefix(7))) == true)
        #expect(f.currentFile("frontend/index.html") == "two")
    }

    @Test func aBranchRefFollowsNewCommitsOnThatBranch() throws {
        let f = try Fixture()
        try f.commitSource(["index.html": "one"])
        try f.commitManifest("demo.yaml", f.manifest(ref: "main"))
        #expect(try f.pass().status == 0)
        let next = try f.commitSource(["index.html": "two"])
        #expect(try f.pass().status == 0)
        #expect(f.current()?.hasSuffix(String(next.prefix(7))) == true)
        #expect(f.currentFile("frontend/index.html") == "two")
    }

    @Test func unchangedFilesAreSharedBetweenReleasesAsReadOnlyHardlinks() throws {
        let f = try Fixture()
        var files: [String: String] = [:]
        for i in 0..<50 { files["lib/file\(i).js"] = "module \(i)\n" }
        files["index.html"] = "one"
        try f.commitSource(files)
        try f.commitManifest("demo.yaml", f.manifest(ref: "main"))
        #expect(try f.pass().status == 0)
        let first = try #require(f.current())
        try f.commitSource(["lib/file0.js": "changed\n"])
        #expect(try f.pass().status == 0)
        let second = try #require(f.current())
        #expect(first != second)

        func inode(_ release: String, _ path: String) throws -> UInt64 {
            let attributes = try FileManager.default.attributesOfItem(atPath: "\(f.appsRoot)/demo/releases/\(release)/backend/\(path)")
            return (attributes[.systemFileNumber] as? NSNumber)?.uint64Value ?? 0
        }
        #expect(try inode(first, "lib/file7.js") == inode(second, "lib/file7.js"))
        #expect(try inode(first, "lib/file0.js") != inode(second, "lib/file0.js"))
        #expect(f.read("\(f.appsRoot)/demo/releases/\(first)/backend/lib/file0.js") == "module 0\n")
        #expect(f.read("\(f.appsRoot)/demo/releases/\(second)/backend/lib/file0.js") == "changed\n")
        // Shared inodes are read-only, so a process writing into one release cannot alter another.
        let mode = try FileManager.default.attributesOfItem(atPath: "\(f.appsRoot)/demo/releases/\(second)/backend/lib/file7.js")[.posixPermissions] as? Int
        #expect(mode == 0o444)
    }

    @Test func keepThreeOverSevenDeploysLeavesThreeReleasesAndSharedContentSurvives() throws {
        let f = try Fixture()
        var currents: [String] = []
        for round in 1...7 {
            let sha = try f.commitSource(["index.html": "round \(round)"])
            try f.commitManifest("demo.yaml", f.manifest(ref: sha, keep: 3, extra: "shared: [storage]"))
            let result = try f.pass()
            #expect(result.status == 0, "\(result.output)")
            if round == 1 {
                try "uploaded by a user".write(toFile: "\(f.appsRoot)/demo/shared/storage/upload.txt", atomically: true, encoding: .utf8)
            }
            currents.append(try #require(f.current()))
        }
        let releases = f.releases()
        #expect(releases.count == 3)
        #expect(releases.contains(currents.last!))
        #expect(releases == Array(currents.suffix(3)))
        #expect(f.read("\(f.appsRoot)/demo/shared/storage/upload.txt") == "uploaded by a user")
        #expect(f.read("\(f.appsRoot)/demo/current/backend/storage/upload.txt") == "uploaded by a user")
        // Pruned releases' files are deleted at the start of the next pass, then the objects no
        // release uses any more: one index.html per kept release remains.
        #expect(try f.pass().status == 0)
        #expect(!FileManager.default.fileExists(atPath: "\(f.appsRoot)/demo/.slipway/trash"))
        let objects = try FileManager.default.subpathsOfDirectory(atPath: "\(f.appsRoot)/demo/.slipway/objects")
            .filter { $0.contains("/") }
        #expect(objects.count == 3)
    }

    @Test func revertingTheManifestSwitchesToTheKeptReleaseWithoutRebuilding() throws {
        let f = try Fixture()
        let one = try f.commitSource(["index.html": "one"])
        try f.commitManifest("demo.yaml", f.manifest(ref: one))
        #expect(try f.pass().status == 0)
        let first = try #require(f.current())
        let two = try f.commitSource(["index.html": "two"])
        try f.commitManifest("demo.yaml", f.manifest(ref: two))
        #expect(try f.pass().status == 0)
        try f.commitManifest("demo.yaml", f.manifest(ref: one))
        let result = try f.pass()
        #expect(result.status == 0)
        #expect(f.current() == first)
        #expect(f.releases().count == 2)
        #expect(result.stderr.contains("switched to kept release"))
    }
}
