import Testing
import SlipwayCore

@Suite struct RemovalPolicyTests {
    let apps = ["a", "b", "c", "d"].map { AppName($0)! }
    let t0 = UTCTime(millisecondsSinceEpoch: 1_000_000)
    func at(_ seconds: Int64) -> UTCTime { UTCTime(millisecondsSinceEpoch: t0.millisecondsSinceEpoch + seconds * 1000) }

    @Test func aSingleRemovalWaitsTheGraceThenRemoves() {
        let first = RemovalPolicy.decide(running: Set(apps), removing: [apps[0]], since: [:], commit: "c1c1c1c1", confirmed: nil,
                                         grace: .seconds(600), now: t0)
        #expect(first.verdicts[apps[0]] == .waiting(since: t0, until: at(600)))
        #expect(first.held == nil)
        let later = RemovalPolicy.decide(running: Set(apps), removing: [apps[0]], since: [apps[0]: t0], commit: "c2c2c2c2", confirmed: nil,
                                         grace: .seconds(600), now: at(599))
        #expect(later.verdicts[apps[0]] == .waiting(since: t0, until: at(600)))
        let over = RemovalPolicy.decide(running: Set(apps), removing: [apps[0]], since: [apps[0]: t0], commit: "c2c2c2c2", confirmed: nil,
                                        grace: .seconds(600), now: at(600))
        #expect(over.verdicts[apps[0]] == .remove)
    }

    @Test func removingMoreThanHalfIsHeldUntilThatCommitIsConfirmed() {
        let all = RemovalPolicy.decide(running: Set(apps), removing: Set(apps), since: [:], commit: "c1c1c1c1", confirmed: nil,
                                       grace: .seconds(600), now: t0)
        #expect(all.held?.commit == "c1c1c1c1" && all.held?.removed == 4 && all.held?.of == 4)
        #expect(Set(all.verdicts.values) == [.held])
        // Three of four is more than half; exactly half is not.
        #expect(RemovalPolicy.decide(running: Set(apps), removing: Set(apps.prefix(3)), since: [:], commit: "c1c1c1c1", confirmed: nil,
                                     grace: .zero, now: t0).held != nil)
        #expect(RemovalPolicy.decide(running: Set(apps), removing: Set(apps.prefix(2)), since: [:], commit: "c1c1c1c1", confirmed: nil,
                                     grace: .zero, now: t0).held == nil)
        // Confirming another commit confirms nothing; confirming this one starts the grace.
        #expect(RemovalPolicy.decide(running: Set(apps), removing: Set(apps), since: [:], commit: "c1c1c1c1", confirmed: "c0c0c0c0",
                                     grace: .seconds(600), now: t0).held != nil)
        let confirmed = RemovalPolicy.decide(running: Set(apps), removing: Set(apps), since: [:], commit: "c1c1c1c1", confirmed: "c1c1c1c1",
                                             grace: .seconds(600), now: t0)
        #expect(confirmed.held == nil)
        #expect(confirmed.verdicts[apps[3]] == .waiting(since: t0, until: at(600)))
    }

    @Test func theOnlyAppOfAHostIsNotAMassRemovalAndAppsNotRunningHereDoNotCount() {
        let only = RemovalPolicy.decide(running: [apps[0]], removing: [apps[0]], since: [:], commit: "c1c1c1c1", confirmed: nil,
                                        grace: .zero, now: t0)
        #expect(only.held == nil)
        #expect(only.verdicts[apps[0]] == .remove)
        // An app that never ran here is not this host's removal.
        let elsewhere = RemovalPolicy.decide(running: [apps[0]], removing: [apps[1], apps[2]], since: [:], commit: "c1c1c1c1", confirmed: nil,
                                             grace: .zero, now: t0)
        #expect(elsewhere.verdicts.isEmpty)
    }
}
