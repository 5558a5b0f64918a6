import Foundation
import Testing

/// `migrate.hosts: [web-1]` across the fleet's hosts: a PostgreSQL host on the test network, web-1
/// runs the expand against it, every other host runs `check` from its own namespace until the
/// schema is there, and only then switches.
extension FleetTests {
    static let migrateScript = """
    set -eu
    q() { /usr/bin/psql -X -q -tA -v ON_ERROR_STOP=1 "$DATABASE_URL" -c "$1"; }
    case "$1" in
      expand)
        q "SELECT pg_sleep(3)"
        q "CREATE TABLE IF NOT EXISTS schema_migrations (sha text PRIMARY KEY, client inet DEFAULT inet_client_addr(), applied_at timestamptz DEFAULT clock_timestamp())"
        q "INSERT INTO schema_migrations (sha) VALUES ('$SLIPWAY_SHA') ON CONFLICT DO NOTHING" ;;
      check)
        test "$(q "SELECT count(*) FROM schema_migrations WHERE sha = '$SLIPWAY_SHA'")" = 1 ;;
    esac

    """

    func migrateOnOneHostWhileTheOthersCheck(_ f: Fixture, network: TestNetwork, webs: [String], repo: String,
                                             push: () throws -> Fixture.RunResult, served: (String, String) -> String?) throws {
        let dbAddress = try network.addHost("db")
        let postgres = try TestPostgres(root: f.root, tcp: (network.namespace("db"), dbAddress, network.subnet + ".0/24"))
        defer { postgres.stop() }
        try postgres.start()
        try postgres.psql("CREATE ROLE shop LOGIN")
        try postgres.psql("CREATE DATABASE shop OWNER shop")

        let sha = try f.commitSource(["migrate.sh": Self.migrateScript, "index.html": "shop"])
        try f.git(["push", "-q", "--force", f.bareSource, "main"], in: f.sourceRepo)
        try f.commitManifest("shop.yaml", f.plainManifest(app: "shop", repo: repo, ref: sha) + """
        env: {DATABASE_URL: "postgresql://shop@\(dbAddress):5432/shop"}
        migrate:
          expand: sh migrate.sh expand
          check: sh migrate.sh check
          hosts: [web-1]
          timeout: 2m

        """)
        let pushed = Date()
        _ = try push()
        let deployed = f.waitUntil(seconds: 120) { webs.allSatisfy { served($0, "shop") == "shop" } }
        func buildLog(_ web: String) -> String {
            let current = (try? FileManager.default.destinationOfSymbolicLink(atPath: "\(f.root)/hosts/\(web)/apps/shop/current"))
                .map { ($0 as NSString).lastPathComponent } ?? "?"
            return f.read("\(f.root)/hosts/\(web)/state/logs/shop/\(current).build.log") ?? ""
        }
        #expect(deployed, "\(webs.map { "\($0): \(served($0, "shop") ?? "-")\n\(buildLog($0))" }.joined(separator: "\n"))")
        print("fleet: migrate.hosts [web-1] + check on \(webs.count - 1) other hosts: all \(webs.count) switched "
              + "\(String(format: "%.1f", Date().timeIntervalSince(pushed))) s after the push (expand sleeps 3 s)")

        // One expand, run once, from web-1's address.
        let rows = try postgres.psql("SELECT sha, host(client), (extract(epoch FROM applied_at) * 1000)::bigint FROM schema_migrations", database: "shop")
        let fields = rows.split(separator: "|").map(String.init)
        #expect(fields.count == 3 && fields[0] == sha && fields[1] == network.address("web-1"), "\(rows)")
        let expandedAt = Int64(fields.last ?? "") ?? .max
        #expect(buildLog("web-1").contains("==> expand: sh migrate.sh expand"), "\(buildLog("web-1"))")

        // Every other host waited for it, from its own namespace, and switched only after it.
        var attempts: [Int] = []
        for web in webs.dropFirst() {
            let log = buildLog(web)
            #expect(!log.contains("==> expand: sh migrate.sh expand"), "\(web) ran the expand: \(log)")
            let attempt = log.components(separatedBy: "==> check passed on attempt ").dropFirst().first
                .flatMap { Int($0.prefix(while: \.isNumber)) }
            #expect(attempt != nil, "\(web): \(log)")
            attempts.append(attempt ?? 0)
            let status = try Fixture.run(Fixture.binary, ["status", "--json", "--config", "\(f.root)/hosts/\(web)/agent.yaml"], timeout: 60)
            let apps = (try? JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])?["apps"] as? [[String: Any]] ?? []
            let shop = apps.first { $0["app"] as? String == "shop" } ?? [:]
            let switched = try #require(MigrationDeployTests.stages(shop)["switch"], "\(web): \(status.output)")
            #expect(switched.start >= expandedAt, "\(web) switched at \(switched.start), before the expand was recorded at \(expandedAt)")
            #expect(MigrationDeployTests.stages(shop)["contract"] == nil)
        }
        // The expand sleeps 3 s: the waiting hosts were already checking before it was done.
        #expect(attempts.contains { $0 > 1 }, "check passed on the first attempt everywhere: \(attempts)")
        print("fleet: the waiting hosts' check passed on attempts \(attempts)")
    }
}
