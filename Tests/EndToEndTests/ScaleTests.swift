import Foundation
import Testing

/// Passes stay linear in the number of manifests: no write of the state per app, one scan of
/// /proc per pass, one parse of each manifests commit. (Before: 2,000 manifests took 34–41 s a
/// pass, 5,000 took 109 s, with no app on this host.)
@Suite(.timeLimit(.minutes(5)))
struct ScaleTests {
    @Test func passesOverFiveThousandManifestsForOtherHostsStayFast() throws {
        let f = try Fixture(name: "scale")
        let sha = try f.commitSource(["index.html": "x"])
        let directory = f.manifestsRepo + "/manifests"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for index in 1...5_000 {
            try f.write("app: app\(index)\nsource: {repo: \(f.sourceRepo), ref: \(sha)}\nhosts: [web-9]\nfrontend: {output: dist}\n",
                        to: directory + "/app\(index).yaml")
        }
        // And one app that does run here, so the pass has real work beside the others.
        try f.write(f.manifest(ref: sha), to: directory + "/demo.yaml")
        try f.git(["add", "-A"], in: f.manifestsRepo)
        try f.git(["commit", "-q", "-m", "5,001 manifests"], in: f.manifestsRepo)

        let first = Date()
        #expect(try f.pass().status == 0)
        let firstSeconds = Date().timeIntervalSince(first)
        let second = Date()
        #expect(try f.pass().status == 0)
        let secondSeconds = Date().timeIntervalSince(second)
        // Debug build, the whole process (start, state, git, 5,001 manifests): the release build
        // is several times faster (bench/pass_cost).
        #expect(firstSeconds < 8, "the first pass took \(firstSeconds) s")
        #expect(secondSeconds < 4, "a pass with nothing to do took \(secondSeconds) s")
        #expect(f.currentFile("frontend/index.html") == "x")
        let state = try #require(f.read(f.stateDir + "/state.json"))
        #expect(state.contains("\"app5000\""))
    }
}
