import Testing
@testable import SlipwayCore

/// The cgroups a dead agent left: which names are an agent's, and what becomes of each.
@Suite struct LeftoverGroupTests {
    @Test func theNamesAnAgentMakesAreReadBack() {
        #expect(LeftoverGroup(name: "step-4242-1x9zq") == LeftoverGroup(kind: .step, agentPID: 4242))
        #expect(LeftoverGroup(name: "w0-17-abc") == LeftoverGroup(kind: .worker(slot: 0), agentPID: 17))
        #expect(LeftoverGroup(name: "w12-17-0") == LeftoverGroup(kind: .worker(slot: 12), agentPID: 17))
    }

    @Test func anyOtherNameIsNotAnAgentsAndIsLeftAlone() {
        for name in ["cgroup.procs", "probe-123", "step", "step-123", "step-123-", "step--abc", "step-0-abc", "step-012-abc",
                     "step-123-ABC", "step-123-a.b", "step-123-abc-def", "w-1-abc", "wx-1-abc", "w01-1-abc", "w-1-1-abc",
                     "worker-1-abc", "step-99999999999-abc", "../step-1-abc", ""] {
            #expect(LeftoverGroup(name: name) == nil, "\(name)")
        }
    }

    @Test func aLiveAgentsGroupsAreLeftWhateverTheyHold() {
        for kind in [LeftoverGroup.Kind.step, .worker(slot: 1)] {
            let group = LeftoverGroup(kind: kind, agentPID: 5)
            #expect(group.action(agentRuns: true, isEmpty: true) == .leave)
            #expect(group.action(agentRuns: true, isEmpty: false) == .leave)
        }
    }

    @Test func aDeadAgentsStepIsKilledAndItsServingWorkerIsNot() {
        #expect(LeftoverGroup(kind: .step, agentPID: 5).action(agentRuns: false, isEmpty: false) == .kill)
        // The worker still serves the app: the next agent stops it once its own workers are up.
        #expect(LeftoverGroup(kind: .worker(slot: 0), agentPID: 5).action(agentRuns: false, isEmpty: false) == .leave)
    }

    @Test func aDeadAgentsEmptyGroupsAreRemoved() {
        #expect(LeftoverGroup(kind: .step, agentPID: 5).action(agentRuns: false, isEmpty: true) == .remove)
        #expect(LeftoverGroup(kind: .worker(slot: 3), agentPID: 5).action(agentRuns: false, isEmpty: true) == .remove)
    }
}
