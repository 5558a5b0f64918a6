import Testing
import Foundation
@testable import SlipwayCore

@Suite struct DurationTextTests {
    @Test(arguments: [("500ms", 500), ("30s", 30_000), ("5m", 300_000), ("1h", 3_600_000), ("1h30m", 5_400_000),
                      ("2d", 172_800_000), (" 15m ", 900_000), ("0s", 0)])
    func parses(_ text: String, _ milliseconds: Int64) {
        #expect(DurationText.parse(text) == .milliseconds(milliseconds))
    }

    @Test(arguments: ["", "15", "m", "5 m", "1.5s", "-1s", "5x", "1h 30m", "99999999999999s", "ms"])
    func refuses(_ text: String) {
        #expect(DurationText.parse(text) == nil)
    }

    @Test func formatsShortestExact() {
        #expect(DurationText.format(.seconds(900)) == "15m")
        #expect(DurationText.format(.milliseconds(1500)) == "1500ms")
        #expect(DurationText.format(.seconds(5400)) == "1h30m")
        #expect(DurationText.format(.zero) == "0s")
    }
}

@Suite struct UTCTimeTests {
    @Test func formatsCompactAndISO() {
        let time = UTCTime(millisecondsSinceEpoch: 1_795_620_806_120) // 2026-11-25T15:33:26.120Z
        #expect(time.compact == "20261125T153326Z")
        #expect(time.iso8601 == "2026-11-25T15:33:26.120Z")
        #expect(UTCTime(iso8601: time.iso8601) == time)
        #expect(UTCTime(compact: "20261125T153326Z")?.millisecondsSinceEpoch == 1_795_620_806_000)
    }

    @Test func epochAndLeapDays() {
        #expect(UTCTime(millisecondsSinceEpoch: 0).iso8601 == "1970-01-01T00:00:00.000Z")
        #expect(UTCTime(iso8601: "2024-02-29T23:59:59Z")?.compact == "20240229T235959Z")
        #expect(UTCTime(compact: "20230229T000000Z") == nil)
        #expect(UTCTime(compact: "20231301T000000Z") == nil)
        #expect(UTCTime(compact: "20231201T250000Z") == nil)
    }

    /// The byte parser (issue 20) reads back every second `compact` writes, and refuses every
    /// field out of its range, as the round trip through text it replaced did.
    @Test func compactParsesWhatItWritesAndNothingElse() {
        var ms: Int64 = 0
        while ms < 4_102_444_800_000 { // 1970 to 2100, every 2 days 7 hours 13 minutes 17 seconds
            let time = UTCTime(millisecondsSinceEpoch: ms)
            #expect(UTCTime(compact: time.compact) == time)
            ms += 198_797_000
        }
        #expect(UTCTime(compact: "20240229T235959Z")?.iso8601 == "2024-02-29T23:59:59.000Z")
        for bad in ["20230000T000000Z", "20230100T000000Z", "20230132T000000Z", "20230431T000000Z", "21000229T000000Z",
                    "20230101T240000Z", "20230101T006000Z", "20230101T000060Z", "2023010lT000000Z", "20230101T00000Z",
                    "20230101 000000Z", "20230101T000000z", "+2023010T000000Z", "20230101T000000Z0"] {
            #expect(UTCTime(compact: bad) == nil, "\(bad)")
        }
    }
}

@Suite struct ReleaseIDTests {
    let noon = UTCTime(iso8601: "2026-11-25T12:00:00.400Z")!

    @Test func parsesAndPrints() throws {
        let id = try #require(ReleaseID("20261125T120000Z-3f2c1a9"))
        #expect(id.timestamp == "20261125T120000Z")
        #expect(id.shortSHA == "3f2c1a9")
        #expect(id.description == "20261125T120000Z-3f2c1a9")
    }

    @Test(arguments: ["", "20261125T120000Z", "20261125T120000Z-3F2C1A9", "20261125T120000Z-3f2c1a", "20261125-3f2c1a9",
                      "20261125T120000Z-3f2c1a9-2", "../etc", "20261325T120000Z-3f2c1a9", "x20261125T120000Z-3f2c1a9"])
    func refusesMalformed(_ text: String) {
        #expect(ReleaseID(text) == nil)
    }

    @Test func nextUsesTheSecondAndTheShortSHA() {
        let id = ReleaseID.next(at: noon, sha: "3F2C1A9B3F2C1A9B3F2C1A9B3F2C1A9B3F2C1A9B", existing: [])
        #expect(id.description == "20261125T120000Z-3f2c1a9")
    }

    @Test func twoDeploysInTheSameSecondGetDistinctOrderedIDs() {
        let first = ReleaseID.next(at: noon, sha: "bbbbbbb", existing: [])
        let second = ReleaseID.next(at: noon, sha: "aaaaaaa", existing: [first])
        let third = ReleaseID.next(at: noon, sha: "bbbbbbb", existing: [first, second])
        #expect(Set([first, second, third]).count == 3)
        #expect(first < second && second < third)
        // Text order is creation order too.
        #expect([third, first, second].map(\.description).sorted() == [first, second, third].map(\.description))
        #expect(second.description == "20261125T120001Z-aaaaaaa")
    }

    @Test func aClockThatSteppedBackStillYieldsALaterID() {
        let later = ReleaseID("20261125T130000Z-aaaaaaa")!
        let id = ReleaseID.next(at: noon, sha: "bbbbbbb", existing: [later])
        #expect(id > later)
        #expect(id.description == "20261125T130001Z-bbbbbbb")
    }
}

@Suite struct RetentionTests {
    func ids(_ count: Int) -> [ReleaseID] {
        (0..<count).map { ReleaseID("20261125T1200\(String(format: "%02d", $0))Z-aaaaaaa")! }
    }

    @Test func keepsTheNewest() {
        let all = ids(7)
        #expect(Retention.releasesToPrune(all, current: all[6], previousGood: all[5], keep: 3) == Array(all[0..<4]))
    }

    @Test func neverPrunesCurrentOrThePreviousGoodRelease() {
        let all = ids(7)
        // Rolled back to an old release: it and its predecessor stay, beyond the newest `keep`.
        let doomed = Retention.releasesToPrune(all, current: all[1], previousGood: all[0], keep: 2)
        #expect(doomed == [all[2], all[3], all[4]])
        #expect(Retention.releasesToPrune(all, current: all[6], previousGood: nil, keep: 1) == Array(all[0..<6]))
    }

    @Test func nothingToPruneUnderTheLimit() {
        #expect(Retention.releasesToPrune(ids(2), current: nil, previousGood: nil, keep: 5).isEmpty)
        #expect(Retention.releasesToPrune([], current: nil, previousGood: nil, keep: 1).isEmpty)
    }

    @Test func failedAttemptsTakeNoPlaceAmongTheKept() {
        let all = ids(7)
        // 0, 1, 3 good; 2, 4, 5 failed; 6 good and current: keep 3 keeps 6, 3, 1 and the failures
        // newer than 1; only 0 goes (counting the failures, 0 to 3 would have gone).
        let doomed = Retention.releasesToPrune(all, current: all[6], previousGood: all[3], keep: 3, attempts: [all[2], all[4], all[5]])
        #expect(doomed == [all[0]])
        // A failed attempt older than every good release kept goes with them; a newer one stays.
        let withFailure = Retention.releasesToPrune(all, current: all[5], previousGood: all[4], keep: 2, attempts: [all[6], all[3]])
        #expect(withFailure == [all[0], all[1], all[2], all[3]])
        // Nothing good yet: the newest `keep` attempts stay.
        #expect(Retention.releasesToPrune(all, current: nil, previousGood: nil, keep: 2, attempts: Set(all)) == Array(all[0..<5]))
        // Without `attempts`, failed releases count as before.
        #expect(Retention.releasesToPrune(all, current: all[6], previousGood: all[5], keep: 3) == Array(all[0..<4]))
    }

    @Test func previousGoodSkipsFailedReleases() {
        let all = ids(4)
        let observed = [ObservedRelease(id: all[0], fingerprint: "a", succeeded: true),
                        ObservedRelease(id: all[1], fingerprint: "b", succeeded: true),
                        ObservedRelease(id: all[2], fingerprint: "c", succeeded: false),
                        ObservedRelease(id: all[3], fingerprint: "d", succeeded: true)]
        #expect(Retention.previousGood(observed, current: all[3]) == all[1])
        #expect(Retention.previousGood(observed, current: all[0]) == nil)
        #expect(Retention.previousGood(observed, current: nil) == nil)
    }
}

@Suite struct ReleaseSpecTests {
    func manifest(_ extra: String) throws -> Manifest {
        try ManifestDecoder.decode("app: demo\nsource: {repo: /r.git, ref: main}\nbackend: {build: make}\n" + extra, file: "m").get()
    }

    @Test func fieldsThatDoNotShapeTheReleaseDoNotChangeTheFingerprint() throws {
        let base = ReleaseSpec(manifest: try manifest(""), sourceSHA: "a").fingerprint
        #expect(ReleaseSpec(manifest: try manifest("releases: {keep: 2}\nhosts: [x]\nbuild_timeout: 1h\n"), sourceSHA: "a").fingerprint == base)
        #expect(ReleaseSpec(manifest: try manifest(""), sourceSHA: "b").fingerprint != base)
        #expect(ReleaseSpec(manifest: try manifest("env: {A: 1}\n"), sourceSHA: "a").fingerprint != base)
        #expect(ReleaseSpec(manifest: try manifest("shared: [x]\n"), sourceSHA: "a").fingerprint != base)
        #expect(base.count == 64)
    }

    @Test func valuesCannotForgeOtherFields() throws {
        let a = ReleaseSpec(manifest: try manifest("env: {A: \"1\\nenv.B=1:1\"}\n"), sourceSHA: "s").fingerprint
        let b = ReleaseSpec(manifest: try manifest("env: {A: \"1\", B: \"1\"}\n"), sourceSHA: "s").fingerprint
        #expect(a != b)
    }
}

@Suite struct AgentConfigTests {
    func decode(_ text: String) -> Result<AgentConfig, Diagnostics> {
        AgentConfig.decode(text, file: "agent.yaml", hostname: "box")
    }

    @Test func defaults() throws {
        let config = try decode("manifests: {repo: /srv/git/manifests.git}\n").get()
        #expect(config.host == "box")
        #expect(config.manifests.branch == "main")
        #expect(config.manifests.path.value == "manifests")
        #expect(config.appsRoot == "/var/lib/slipway/apps")
        #expect(config.stateDir == "/var/lib/slipway/state")
        #expect(config.pollInterval == .seconds(30))
    }

    @Test func everyField() throws {
        let config = try decode("""
        host: web-1
        manifests: {repo: "file:///srv/m.git", branch: prod, path: deploy/apps}
        apps_root: /srv/apps/
        state_dir: /srv/state
        poll_interval: 5s
        """).get()
        #expect(config.host == "web-1")
        #expect(config.manifests.repo == "file:///srv/m.git")
        #expect(config.manifests.branch == "prod")
        #expect(config.manifests.path.value == "deploy/apps")
        #expect(config.appsRoot == "/srv/apps")
        #expect(config.pollInterval == .seconds(5))
    }

    @Test func verification() throws {
        let config = try decode("manifests: {repo: /m, verify: {allowed_signers: /etc/slipway/allowed_signers, sources: true}}\n").get()
        #expect(config.manifests.verify == .init(allowedSigners: "/etc/slipway/allowed_signers", sources: true))
        #expect(try decode("manifests: {repo: /m, verify: {allowed_signers: /a}}\n").get().manifests.verify?.sources == false)
        #expect(try decode("manifests: {repo: /m}\n").get().manifests.verify == nil)
    }

    @Test func errors() {
        func problems(_ text: String) -> String {
            if case .failure(let d) = decode(text) { return d.description }
            return ""
        }
        #expect(problems("host: x\n").contains("agent.yaml:1:1: the agent config is missing the required key 'manifests'"))
        #expect(problems("manifests: {}\n").contains("missing the required key 'repo'"))
        #expect(problems("manifests: {repo: /m, brnach: x}\n").contains("unknown key 'brnach' in manifests — did you mean 'branch'?"))
        #expect(problems("manifests: {repo: /m}\napps_root: relative\n").contains("apps_root must be an absolute path"))
        #expect(problems("manifests: {repo: /m}\nstate_dir: /a/../b\n").contains("state_dir must be an absolute path without '..'"))
        #expect(problems("manifests: {repo: /m}\npoll_interval: often\n").contains("poll_interval must be a duration"))
        #expect(problems("manifests: {repo: /m}\npoll_interval: 10ms\n").contains("at least 1s"))
        #expect(problems("manifests: {repo: /m, branch: 'a b'}\n").contains("not a valid branch name"))
        #expect(problems("manifests: {repo: /m, path: ../x}\n").contains("manifests.path '../x' is not allowed"))
        #expect(problems("manifests: {repo: relative}\n").contains("manifests.repo 'relative' is not a repository location"))
        #expect(problems("manifests: {repo: /m, verify: {}}\n").contains("missing the required key 'allowed_signers'"))
        #expect(problems("manifests: {repo: /m, verify: {allowed_signers: rel}}\n").contains("must be an absolute path"))
        #expect(problems("manifests: {repo: /m, verify: {allowed_signers: /a, sources: maybe}}\n").contains("manifests.verify.sources must be true or false, not 'maybe'"))
        #expect(problems("manifests: {repo: /m, verify: {allowed_signer: /a}}\n").contains("did you mean 'allowed_signers'?"))
    }
}
