import Testing
@testable import SlipwayCore

/// Which stages a deploy or rollback runs, from the manifest and the host's part alone.
@Suite struct StagePlanTests {
    func manifest(_ extra: String = "") throws -> Manifest {
        try ManifestDecoder.decode("app: demo\nsource: {repo: /r.git, ref: main}\n" + extra, file: "demo.yaml").get()
    }

    let workers = "backend:\n  command: node server.js\n"
    let migrate = "migrate: {expand: ./up, contract: ./down, check: ./status, hosts: [web-1]}\n"

    @Test func aStaticSiteFetchesBuildsSwitchesAndPrunes() throws {
        let plan = StagePlan.deploy(try manifest("frontend: {build: make, output: dist}\n"), role: .none, runsWorkers: true)
        #expect(plan == [.fetch, .build, .switch, .prune])
    }

    @Test func workersAddReloadAndVerifyWhereTheyRun() throws {
        let app = try manifest(workers)
        #expect(StagePlan.deploy(app, role: .none, runsWorkers: true) == [.fetch, .build, .switch, .reload, .verify, .prune])
        // A one-shot pass (`agent --once`) runs no workers.
        #expect(StagePlan.deploy(app, role: .none, runsWorkers: false) == [.fetch, .build, .switch, .prune])
    }

    @Test func theMigratingHostExpandsAndContracts() throws {
        let app = try manifest(workers + migrate)
        #expect(StagePlan.deploy(app, role: app.migrate!.role(on: "web-1"), runsWorkers: true)
            == [.fetch, .build, .expand, .switch, .reload, .verify, .contract, .prune])
    }

    @Test func anotherHostWaitsForTheCheckAndNeverContracts() throws {
        let app = try manifest(workers + migrate)
        let role = app.migrate!.role(on: "web-2")
        #expect(role == .waits)
        #expect(StagePlan.deploy(app, role: role, runsWorkers: true) == [.fetch, .build, .expand, .switch, .reload, .verify, .prune])
    }

    @Test func onlyTheStepsDeclaredRun() throws {
        let contractOnly = try manifest(workers + "migrate: {contract: ./down}\n")
        #expect(StagePlan.deploy(contractOnly, role: contractOnly.migrate!.role(on: "web-1"), runsWorkers: true)
            == [.fetch, .build, .switch, .reload, .verify, .contract, .prune])
        let expandOnly = try manifest(workers + "migrate: {expand: ./up}\n")
        #expect(StagePlan.deploy(expandOnly, role: expandOnly.migrate!.role(on: "web-1"), runsWorkers: true)
            == [.fetch, .build, .expand, .switch, .reload, .verify, .prune])
    }

    @Test func stagesKeepTheDocumentedOrder() throws {
        let plan = StagePlan.deploy(try manifest(workers + migrate), role: .runs, runsWorkers: true)
        #expect(plan == Stage.deploy)
    }

    @Test func aRollbackSwitchesAndRollsTheWorkersWithoutBuildingOrMigrating() throws {
        let app = try manifest(workers + migrate)
        #expect(StagePlan.rollback(app, runsWorkers: true) == [.switch, .reload, .verify])
        #expect(StagePlan.rollback(app, runsWorkers: false) == [.switch])
        #expect(StagePlan.rollback(nil, runsWorkers: true) == [.switch])
        #expect(StagePlan.rollback(try manifest("frontend: {output: dist}\n"), runsWorkers: true) == [.switch])
    }
}
