import Testing
@testable import SlipwayCore

/// What a run's result makes of an app's condition, message and memory: values only.
@Suite struct OutcomeRulesTests {
    let r1 = ReleaseID("20261125T120000Z-aaaaaaa")!
    let at = UTCTime(millisecondsSinceEpoch: 1_000)
    let earlier = AppMemory.Failure(fingerprint: "old", stage: .build, error: "make: *** [all] Error 2", at: UTCTime(millisecondsSinceEpoch: 0))

    @Test func aSucceededDeployConvergesAndForgetsAnEarlierFailure() {
        let verdict = OutcomeRules.afterDeploy(.succeeded, fingerprint: "f", release: r1, memory: AppMemory(failure: earlier), at: at)
        #expect(verdict.condition == .converged)
        #expect(verdict.message == nil)
        #expect(verdict.memory.failure == nil)
    }

    @Test func aFailedDeployIsRememberedForItsDesiredState() {
        let verdict = OutcomeRules.afterDeploy(.failed(.verify, reason: "health 500"), fingerprint: "f", release: r1, memory: AppMemory(), at: at)
        #expect(verdict.condition == .failed)
        #expect(verdict.message == "verify failed: health 500")
        #expect(verdict.memory.failure == .init(fingerprint: "f", stage: .verify, error: "health 500", at: at))
    }

    @Test func aSupersededDeployIsNotAFailure() {
        let verdict = OutcomeRules.afterDeploy(.superseded(by: "0123456789abcdef0123"), fingerprint: "f", release: nil,
                                               memory: AppMemory(failure: earlier), at: at)
        #expect(verdict.condition == .interrupted)
        #expect(verdict.message == "superseded by manifests commit 0123456789ab before the switch; the next pass deploys it")
        // Nothing is learnt about the release: what was remembered stays as it was.
        #expect(verdict.memory.failure == earlier)
        #expect(!DeployResult.superseded(by: "x").firesHooks)
    }

    @Test func aCancelledDeployIsRetriedOnTheNextStart() {
        let verdict = OutcomeRules.afterDeploy(.cancelled(at: .build), fingerprint: "f", release: nil, memory: AppMemory(), at: at)
        #expect(verdict.condition == .interrupted)
        #expect(verdict.message == "the deploy was stopped at build by the agent's shutdown; the next pass starts it again")
        #expect(verdict.memory.failure == nil)
        #expect(!DeployResult.cancelled(at: .build).firesHooks)
    }

    @Test func aFailedContractLeavesTheReleaseLiveAndDegraded() {
        let verdict = OutcomeRules.afterDeploy(.degraded(contractFailed: "psql: relation missing"), fingerprint: "f", release: r1,
                                               memory: AppMemory(failure: earlier), at: at)
        #expect(verdict.condition == .degraded)
        #expect(verdict.message?.hasPrefix("contract failed: psql: relation missing\nrelease \(r1) stays live") == true)
        #expect(verdict.memory.failure == nil)
        #expect(DeployResult.degraded(contractFailed: "x").isLive && DeployResult.degraded(contractFailed: "x").firesHooks)
        #expect(DeployResult.degraded(contractFailed: "x").stoppedStage == .contract)
    }

    @Test func anOperatorsRollbackIsPinned() {
        let pin = AppMemory.Pin(release: r1, reason: "rolled back from x by an operator", desiredFingerprint: "f", at: at)
        var memory = AppMemory(pin: pin)
        memory.workerFailure = "g-old"
        let verdict = OutcomeRules.afterRollback(.succeeded, to: r1, generation: "g1", memory: memory)
        #expect(verdict.condition == .pinned)
        #expect(verdict.message == "pinned to \(r1): rolled back from x by an operator; released when the manifest changes")
        #expect(verdict.memory.workerFailure == nil)
        #expect(verdict.memory.pin == pin)
    }

    @Test func aKeptReleaseThatRealisesTheManifestConverges() {
        let verdict = OutcomeRules.afterRollback(.succeeded, to: r1, generation: nil, memory: AppMemory(failure: earlier))
        #expect(verdict.condition == .converged)
        #expect(verdict.memory.failure == nil)
    }

    @Test func workersRefusingAKeptReleaseAreRememberedByGeneration() {
        let verdict = OutcomeRules.afterRollback(.failed(.verify, reason: "worker 1 exited"), to: r1, generation: "g1", memory: AppMemory())
        #expect(verdict.condition == .failed)
        #expect(verdict.message == "verify failed: worker 1 exited; the workers that ran before keep serving")
        #expect(verdict.memory.workerFailure == "g1")
    }

    @Test func aFailedSwitchSaysSo() {
        let verdict = OutcomeRules.afterRollback(.failed(.switch, reason: "ENOSPC"), to: r1, generation: "g1", memory: AppMemory())
        #expect(verdict.condition == .failed)
        #expect(verdict.message == "switching to \(r1) failed: ENOSPC")
        #expect(verdict.memory.workerFailure == nil)
    }
}
