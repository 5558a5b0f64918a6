import Foundation
import Testing

/// Issue 16, against the built binary: what a pusher of the app's source tries to get nginx to
/// serve or the agent to do as root.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct HardeningTests {
    static let buildScript = (try? String(contentsOfFile: WorkerApp.packageRoot + "/examples/platform/build-frontend.sh", encoding: .utf8)) ?? ""

    func deploy(_ app: WorkerApp, _ version: String, buildExtra: String) throws -> Fixture.RunResult {
        try app.f.commitSource(["VERSION": version, "build-frontend.sh": Self.buildScript + buildExtra + "\n"], message: version,
                               executable: ["build-frontend.sh"])
        return try app.f.slipway(["deploy", "demo", "--wait"], timeout: 120)
    }

    @Test func nginxNeverServesALinkOutOfTheRelease() throws {
        let app = try WorkerApp(instances: 1, withNginx: true)
        try app.start()
        let nginx = try #require(app.nginx)
        // Another app's secrets on this host.
        let secret = app.f.appsRoot + "/billing/shared/secret.txt"
        try app.f.write("API_KEY=billing-secret\n", to: secret)
        chmod(secret, 0o600)

        // A build that links out of its output: refused with a located message; v1 still serves.
        for (link, target) in [("passwd.txt", "/etc/passwd"), ("root", "/"), ("billing.txt", secret)] {
            let result = try deploy(app, "bad-\(link)", buildExtra: "ln -s \(target) dist/\(link)")
            #expect(result.status != 0)
            #expect(result.output.contains("frontend output 'dist/\(link)' links outside the release (to \(target))"), "\(result.output)")
        }
        #expect(try nginx.get("/").body.contains("version: v1"))

        // A link inside the output is served (it became a hard link to its target).
        let good = try deploy(app, "v2", buildExtra: "ln -s \"assets/$(ls dist/assets | grep '[.]js$')\" dist/latest.js")
        #expect(good.status == 0, "\(good.output)")
        let latest = try nginx.get("/latest.js")
        #expect(latest.status == 200 && latest.body.contains("v2"), "\(latest.status)")

        // Links planted in the live release behind Slipway's back (as a release made before this
        // check would hold them): nginx's disable_symlinks serves none of them.
        let frontend = app.f.appsRoot + "/demo/current/frontend"
        symlink("/etc/passwd", frontend + "/passwd.txt")
        symlink("/", frontend + "/root")
        symlink(secret, frontend + "/billing.txt")
        for path in ["/passwd.txt", "/root/etc/passwd", "/root/etc/hostname", "/billing.txt"] {
            let response = try nginx.get(path)
            #expect(!response.body.contains("root:x:0:0") && !response.body.contains("billing-secret"), "\(path) served \(response.status)")
            #expect(response.status == 404 || response.status == 403 || response.body.contains("version: v2"), "\(path): \(response.status)")
        }
        #expect(try nginx.get("/latest.js").status == 200)
    }
}
