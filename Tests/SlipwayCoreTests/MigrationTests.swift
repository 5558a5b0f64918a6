import Testing
@testable import SlipwayCore

/// The `migrate` section and what the planner and rollback make of it: values only.
@Suite struct MigrationTests {
    static let head = "app: demo\nsource: {repo: /r.git, ref: main}\nbackend: {dir: server}\n"

    func decode(_ text: String) -> Result<Manifest, Diagnostics> {
        ManifestDecoder.decode(Self.head + text, file: "demo.yaml")
    }

    func problems(_ text: String) -> [String] {
        switch decode(text) {
        case .success: return []
        case .failure(let diagnostics): return diagnostics.items.map(\.description)
        }
    }

    // MARK: Schema

    @Test func everyFieldOfTheIssueDecodes() throws {
        let manifest = try decode("""
        migrate:
          expand: npm run migrate:up
          contract: npm run migrate:contract
          check: npm run migrate:status
          timeout: 90s
          hosts: [web-1]
        """).get()
        let migrate = try #require(manifest.migrate)
        #expect(migrate == Migrate(expand: "npm run migrate:up", contract: "npm run migrate:contract", check: "npm run migrate:status",
                                   timeout: .seconds(90), hosts: ["web-1"]))
    }

    @Test func theTimeoutDefaultsToFiveMinutesAndEveryHostMigrates() throws {
        let migrate = try #require(try decode("migrate: {expand: ./migrate.sh expand}").get().migrate)
        #expect(migrate.timeout == .seconds(300))
        #expect(migrate.hosts == nil)
        #expect(migrate.role(on: "anything") == .runs)
    }

    @Test func badSectionsGetTheirPlaceAndAHint() {
        #expect(problems("migrate: {timeout: 5m}") == [
            "demo.yaml:4:10: migrate declares neither 'expand' nor 'contract' — add 'expand: ./migrate.sh expand' (run before the switch), 'contract: ...' (after), or remove 'migrate'",
        ])
        #expect(problems("migrate: {expand: x, hosts: [web-1]}") == [
            "demo.yaml:4:29: migrate.hosts leaves other hosts to wait for the expand, but no migrate.check tells them when it is done — add 'check: ./migrate.sh check', a command that exits 0 once this release's schema exists",
        ])
        #expect(problems("migrate: {expand: x, check: y}").first?.contains("migrate.check is only run on hosts left out of migrate.hosts") == true)
        #expect(problems("migrate: {expand: x, hosts: []}").first?.contains("migrate.hosts is empty") == true)
        #expect(problems("migrate: {expand: x, timeout: 0s}").first?.hasPrefix("demo.yaml:4:31: migrate.timeout") == true)
        #expect(problems("migrate: {expand: '', contract: x}").first?.hasPrefix("demo.yaml:4:19: migrate.expand") == true)
        #expect(problems("migrate: {expnad: x}").first?.contains("expnad") == true)
        #expect(problems("migrate: [x]").first?.hasPrefix("demo.yaml:4:10: migrate must be a mapping") == true)
        let noBackend = ManifestDecoder.decode("app: demo\nsource: {repo: /r.git, ref: main}\nfrontend: {output: dist}\nmigrate: {expand: x}\n",
                                               file: "demo.yaml")
        guard case .failure(let diagnostics) = noBackend else { Issue.record("a migrate section without a backend was accepted"); return }
        #expect(diagnostics.items.map(\.description).contains { $0.contains("migrate steps run in the backend's directory") })
    }

    @Test func eachHostKnowsItsPart() {
        let one = Migrate(expand: "e", contract: "c", check: "k", hosts: ["web-1"])
        #expect(one.role(on: "web-1") == .runs)
        #expect(one.role(on: "web-2") == .waits)
        #expect(Migrate(contract: "c", hosts: ["web-1"]).role(on: "web-2") == .none)
        #expect(MigrationRole.runs.gatesSwitch(one) && MigrationRole.waits.gatesSwitch(one))
        #expect(!MigrationRole.none.gatesSwitch(one))
        #expect(!MigrationRole.runs.gatesSwitch(Migrate(contract: "c")))
        #expect(MigrationRole.runs.contracts(one) && !MigrationRole.waits.contracts(one))
    }

    @Test func expandAndCheckAreInTheFingerprintContractTimeoutAndHostsAreNot() throws {
        let plain = try decode("").get()
        let with = try decode("migrate: {expand: a, contract: b, check: k, hosts: [web-1], timeout: 1m}").get()
        func fingerprint(_ manifest: Manifest) -> String { ReleaseSpec(manifest: manifest, sourceSHA: "s").fingerprint }
        #expect(fingerprint(plain) != fingerprint(with))
        var other = with
        other.migrate?.contract = "other"
        other.migrate?.timeout = .seconds(5)
        other.migrate?.hosts = ["web-2"]
        #expect(fingerprint(other) == fingerprint(with))
        other.migrate?.expand = "other"
        #expect(fingerprint(other) != fingerprint(with))
        // A contract-only section changes nothing on disk: releases made before it stay reusable.
        var contractOnly = plain
        contractOnly.migrate = Migrate(contract: "c")
        #expect(fingerprint(contractOnly) == fingerprint(plain))
    }

    // MARK: Planning

    let r1 = ReleaseID("20261125T120000Z-aaaaaaa")!
    let r2 = ReleaseID("20261125T130000Z-bbbbbbb")!
    let r3 = ReleaseID("20261125T140000Z-ccccccc")!

    func app(_ sha: String, role: MigrationRole = .runs, migrate: Migrate? = Migrate(expand: "e", contract: "c")) -> ResolvedApp {
        var manifest = try! decode("").get()
        manifest.migrate = migrate
        return ResolvedApp(manifest: manifest, manifestPath: "manifests/demo.yaml", sourceSHA: sha, migrationRole: role)
    }

    func release(_ id: ReleaseID, _ desired: ResolvedApp, succeeded: Bool = true, contracted: Bool = false) -> ObservedRelease {
        ObservedRelease(id: id, fingerprint: desired.spec.fingerprint, succeeded: succeeded, contracted: contracted)
    }

    @Test func aLiveReleaseWhoseContractHasNotRunGetsItsContract() {
        let desired = app("a")
        let observed = ObservedApp(releases: [release(r1, desired)], current: r1)
        #expect(Planner.plan(desired: .resolved(desired), observed: observed).action == .contract(r1))
        let contracted = ObservedApp(releases: [release(r1, desired, contracted: true)], current: r1)
        #expect(Planner.plan(desired: .resolved(desired), observed: contracted).action == .upToDate)
    }

    @Test func onlyAMigratingHostContracts() {
        let waiting = app("a", role: .waits, migrate: Migrate(expand: "e", contract: "c", check: "k", hosts: ["web-1"]))
        let observed = ObservedApp(releases: [release(r1, waiting)], current: r1)
        #expect(Planner.plan(desired: .resolved(waiting), observed: observed).action == .upToDate)
        let none = app("a", role: .none, migrate: nil)
        #expect(Planner.plan(desired: .resolved(none), observed: ObservedApp(releases: [release(r1, none)], current: r1)).action == .upToDate)
    }

    @Test func aPinnedReleaseIsNotContracted() {
        let desired = app("b")
        var memory = AppMemory()
        memory.pin = .init(release: r1, reason: "rollback", desiredFingerprint: desired.spec.fingerprint, at: UTCTime(millisecondsSinceEpoch: 0))
        let observed = ObservedApp(releases: [release(r1, app("a")), release(r2, desired)], current: r1, memory: memory)
        #expect(Planner.plan(desired: .resolved(desired), observed: observed).action == .keepPinned(r1, switchTo: false, learnedFingerprint: nil))
    }

    @Test func withAnExpandAKeptReleaseIsRebuiltNotSwitchedTo() {
        // Going back to an earlier source must run its expand again: no switch behind its back.
        let a = app("a"), b = app("b")
        let observed = ObservedApp(releases: [release(r1, a), release(r2, b)], current: r2)
        #expect(Planner.plan(desired: .resolved(a), observed: observed).action == .deploy(a))
        let contractOnly = app("a", migrate: Migrate(contract: "c"))
        let kept = ObservedApp(releases: [release(r1, contractOnly), release(r2, app("b", migrate: Migrate(contract: "c")))], current: r2)
        #expect(Planner.plan(desired: .resolved(contractOnly), observed: kept).action == .switchTo(r1))
    }

    @Test func aReleaseWhoseExpandNeverFinishedIsNeverUsed() {
        // kill -9 during expand: the release is published but pending (not succeeded).
        let desired = app("b")
        let observed = ObservedApp(releases: [release(r1, app("a"), contracted: true), release(r2, desired, succeeded: false)], current: r1)
        #expect(Planner.plan(desired: .resolved(desired), observed: observed).action == .deploy(desired))
        #expect(RollbackTarget.choose(observed, requested: r2.description) == .failure(.unknown(r2.description)))
    }

    // MARK: Rollback

    @Test func aRollbackPastTheLastContractIsRefusedUnlessForced() {
        let a = app("a")
        let observed = ObservedApp(releases: [release(r1, a, contracted: true), release(r2, a, contracted: true), release(r3, a)], current: r3)
        #expect(RollbackTarget.choose(observed, requested: nil) == .success(r2))
        #expect(RollbackTarget.choose(observed, requested: r1.description) == .failure(.pastContract(r1, contracted: r2)))
        #expect(RollbackTarget.choose(observed, requested: r1.description, force: true) == .success(r1))
        let problem = RollbackTarget.Problem.pastContract(r1, contracted: r2)
        #expect(problem.description.contains("--force") && problem.description.contains("contract step changed the schema"))
        // Current itself contracted: its predecessor is past the boundary.
        let contractedCurrent = ObservedApp(releases: [release(r1, a, contracted: true), release(r2, a, contracted: true)], current: r2)
        #expect(RollbackTarget.choose(contractedCurrent, requested: nil) == .failure(.pastContract(r1, contracted: r2)))
    }
}
