import Testing
@testable import SlipwayCore

/// The planner, driven with values only: no disk, no repo, no clock.
@Suite struct PlannerTests {
    let manifest = try! ManifestDecoder.decode("app: demo\nsource: {repo: /r.git, ref: main}\nbackend: {build: make}\n", file: "m").get()
    let r1 = ReleaseID("20261125T120000Z-aaaaaaa")!
    let r2 = ReleaseID("20261125T130000Z-bbbbbbb")!
    let r3 = ReleaseID("20261125T140000Z-ccccccc")!
    let at = UTCTime(millisecondsSinceEpoch: 0)

    func desired(_ sha: String) -> ResolvedApp {
        ResolvedApp(manifest: manifest, manifestPath: "manifests/demo.yaml", sourceSHA: sha)
    }

    func fingerprint(_ sha: String) -> String { desired(sha).spec.fingerprint }

    func release(_ id: ReleaseID, _ sha: String, succeeded: Bool = true) -> ObservedRelease {
        ObservedRelease(id: id, fingerprint: fingerprint(sha), succeeded: succeeded)
    }

    @Test func aFirstDeployBuilds() {
        let plan = Planner.plan(desired: .resolved(desired("a")), observed: ObservedApp())
        #expect(plan.action == .deploy(desired("a")))
        #expect(!plan.clearsPin && !plan.consumesRetry)
    }

    @Test func currentMatchingTheDesiredStateIsUpToDate() {
        let observed = ObservedApp(releases: [release(r1, "a")], current: r1)
        #expect(Planner.plan(desired: .resolved(desired("a")), observed: observed).action == .upToDate)
    }

    @Test func aNewCommitBuilds() {
        let observed = ObservedApp(releases: [release(r1, "a")], current: r1)
        #expect(Planner.plan(desired: .resolved(desired("b")), observed: observed).action == .deploy(desired("b")))
    }

    @Test func aKeptReleaseThatMatchesIsSwitchedToWithoutBuilding() {
        let observed = ObservedApp(releases: [release(r1, "a"), release(r2, "b")], current: r2)
        #expect(Planner.plan(desired: .resolved(desired("a")), observed: observed).action == .switchTo(r1))
    }

    @Test func aPublishedButUnswitchedReleaseAfterACrashIsSwitchedTo() {
        // kill -9 between publish and switch: the release exists, current still names the old one.
        let observed = ObservedApp(releases: [release(r1, "a"), release(r2, "b")], current: r1)
        #expect(Planner.plan(desired: .resolved(desired("b")), observed: observed).action == .switchTo(r2))
    }

    @Test func aReleaseWithoutARecordOrThatFailedIsNeverReused() {
        let unreadable = ObservedRelease(id: r2, fingerprint: nil, succeeded: false)
        let failed = release(r3, "b", succeeded: false)
        let observed = ObservedApp(releases: [release(r1, "a"), unreadable, failed], current: r1)
        #expect(Planner.plan(desired: .resolved(desired("b")), observed: observed).action == .deploy(desired("b")))
    }

    @Test func aRememberedFailureIsHeldUntilTheDesiredStateChanges() {
        let failure = AppMemory.Failure(fingerprint: fingerprint("b"), stage: .build, error: "boom", at: at)
        let observed = ObservedApp(releases: [release(r1, "a")], current: r1, memory: AppMemory(failure: failure))
        #expect(Planner.plan(desired: .resolved(desired("b")), observed: observed).action == .holdFailed(failure))
        #expect(Planner.plan(desired: .resolved(desired("c")), observed: observed).action == .deploy(desired("c")))
        // Going back to what runs is always fine.
        #expect(Planner.plan(desired: .resolved(desired("a")), observed: observed).action == .upToDate)
    }

    @Test func anOperatorRetryRebuildsOnceAndIsConsumed() {
        let failure = AppMemory.Failure(fingerprint: fingerprint("b"), stage: .build, error: "boom", at: at)
        let observed = ObservedApp(releases: [], current: nil, memory: AppMemory(failure: failure, retryRequested: true))
        let plan = Planner.plan(desired: .resolved(desired("b")), observed: observed)
        #expect(plan.action == .deploy(desired("b")))
        #expect(plan.consumesRetry)
    }

    @Test func aPinHoldsWhileTheDesiredStateIsUnchanged() {
        let pin = AppMemory.Pin(release: r1, reason: "rollback", desiredFingerprint: fingerprint("b"), at: at)
        let observed = ObservedApp(releases: [release(r1, "a"), release(r2, "b")], current: r1, memory: AppMemory(pin: pin))
        let plan = Planner.plan(desired: .resolved(desired("b")), observed: observed)
        #expect(plan.action == .keepPinned(r1, switchTo: false, learnedFingerprint: nil))
        #expect(!plan.clearsPin)
    }

    @Test func aPinMovesCurrentBackIfSomethingMovedIt() {
        let pin = AppMemory.Pin(release: r1, reason: "rollback", desiredFingerprint: fingerprint("b"), at: at)
        let observed = ObservedApp(releases: [release(r1, "a"), release(r2, "b")], current: r2, memory: AppMemory(pin: pin))
        #expect(Planner.plan(desired: .resolved(desired("b")), observed: observed).action == .keepPinned(r1, switchTo: true, learnedFingerprint: nil))
    }

    @Test func aPinSetOfflineLearnsTheDesiredStateOnItsFirstPass() {
        let pin = AppMemory.Pin(release: r1, reason: "rollback", desiredFingerprint: nil, at: at)
        let observed = ObservedApp(releases: [release(r1, "a"), release(r2, "b")], current: r1, memory: AppMemory(pin: pin))
        #expect(Planner.plan(desired: .resolved(desired("b")), observed: observed).action
                == .keepPinned(r1, switchTo: false, learnedFingerprint: fingerprint("b")))
    }

    @Test func aChangedDesiredStateReleasesThePin() {
        let pin = AppMemory.Pin(release: r1, reason: "rollback", desiredFingerprint: fingerprint("b"), at: at)
        let observed = ObservedApp(releases: [release(r1, "a"), release(r2, "b")], current: r1, memory: AppMemory(pin: pin))
        let plan = Planner.plan(desired: .resolved(desired("c")), observed: observed)
        #expect(plan.action == .deploy(desired("c")))
        #expect(plan.clearsPin)
    }

    @Test func aPinOnAPrunedReleaseIsReleased() {
        let pin = AppMemory.Pin(release: r3, reason: "rollback", desiredFingerprint: fingerprint("a"), at: at)
        let observed = ObservedApp(releases: [release(r1, "a")], current: r1, memory: AppMemory(pin: pin))
        let plan = Planner.plan(desired: .resolved(desired("a")), observed: observed)
        #expect(plan.action == .upToDate)
        #expect(plan.clearsPin)
    }

    @Test func nothingIsDeployedForInvalidUnresolvedRemovedOrForeignApps() {
        let observed = ObservedApp(releases: [release(r1, "a")], current: r1)
        let diagnostics = Diagnostics([Diagnostic(file: "m.yaml", at: SourceMark(line: 2, column: 3), "bad")])
        #expect(Planner.plan(desired: .invalid(diagnostics), observed: observed).action == .keepCurrent(reason: "m.yaml:2:3: bad"))
        #expect(Planner.plan(desired: .unresolved("unreachable"), observed: observed).action == .keepCurrent(reason: "unreachable"))
        #expect(Planner.plan(desired: .removed, observed: observed).action == .retire(reason: "no manifest declares this app"))
        #expect(Planner.plan(desired: .notOnThisHost, observed: observed).action == .retire(reason: "not scheduled on this host"))
    }

    @Test func rollbackTargets() {
        let observed = ObservedApp(releases: [release(r1, "a"), release(r2, "b", succeeded: false), release(r3, "c")], current: r3)
        #expect(RollbackTarget.choose(observed, requested: nil) == .success(r1))
        #expect(RollbackTarget.choose(observed, requested: r1.description) == .success(r1))
        #expect(RollbackTarget.choose(observed, requested: r2.description) == .failure(.unknown(r2.description)))
        #expect(RollbackTarget.choose(observed, requested: r3.description) == .failure(.alreadyCurrent(r3)))
        #expect(RollbackTarget.choose(observed, requested: "nonsense") == .failure(.unknown("nonsense")))
        #expect(RollbackTarget.choose(ObservedApp(), requested: nil) == .failure(.noCurrent))
        #expect(RollbackTarget.choose(ObservedApp(releases: [release(r1, "a")], current: r1), requested: nil) == .failure(.noOlderRelease))
    }

    @Test func stagesAreOneOrderedList() {
        #expect(Stage.deploy.map(\.rawValue) == ["fetch", "build", "expand", "switch", "reload", "verify", "contract", "prune"])
        #expect(Stage.rollback == [.switch, .reload, .verify])
    }
}
