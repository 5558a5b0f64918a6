import Foundation
import SlipwayCore
import Testing

/// A switch of `current` between nginx's `try_files` (a stat) and the static handler's open of
/// the same path: the stat finds the page's asset in the release switched from, the open looks in
/// the release switched to, which lacks it, and the browser gets a 404 for an asset a kept release
/// holds (NginxTests: 1 asset in 522,716 over 10 deploys). Here `current` flips between two
/// releases as fast as rename(2) allows while clients ask for the asset only one of them has,
/// through the server block Slipway writes, on a real nginx.
@Suite(.endToEnd)
struct NginxSwitchRaceTests {
    @Test func anAssetOfAKeptReleaseIsNever404WhileCurrentSwitches() throws {
        let root = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let app = root + "/app"
        let asset = "/assets/app-0a1b2c3d.js"
        for (release, files) in [("a", [asset: "a's chunk"]), ("b", ["/assets/app-4e5f6a7b.js": "b's chunk"])] {
            for (path, text) in files.merging(["/index.html": "page \(release)"], uniquingKeysWith: { $1 }) {
                try Self.write(text, to: "\(app)/releases/\(release)/frontend\(path)")
            }
        }
        // The archive holds both kept releases' files, as FrontendArchive builds it.
        for (path, text) in [asset: "a's chunk", "/assets/app-4e5f6a7b.js": "b's chunk", "/index.html": "page b"] {
            try Self.write(text, to: "\(app)/.slipway/archive/t1\(path)")
        }
        try FileManager.default.createSymbolicLink(atPath: app + "/" + "frontend-archive", withDestinationPath: ".slipway/archive/t1")
        try FileManager.default.createSymbolicLink(atPath: app + "/current", withDestinationPath: "releases/a")

        let nginx = try TestNginx(root: root)
        let site = NginxSite.render(app: try #require(AppName("race")), serve: Serve(serverNames: ["localhost"], listen: .port(nginx.port)),
                                    appRoot: app, archive: "frontend-archive", upstream: nil, source: "NginxSwitchRaceTests")
        try site.write(toFile: nginx.sitesDir + "/slipway-race.conf", atomically: true, encoding: .utf8)
        try nginx.start()
        defer { nginx.stop() }
        #expect(try nginx.get(asset).status == 200)

        // Two keep-alive clients asking for a's asset for 4 s while current flips a <-> b.
        let client = """
        import http.client, sys, time
        conn = http.client.HTTPConnection('127.0.0.1', int(sys.argv[1]), timeout=5)
        end = time.time() + 4
        counts = {}
        while time.time() < end:
            conn.request('GET', sys.argv[2])
            response = conn.getresponse()
            response.read()
            counts[response.status] = counts.get(response.status, 0) + 1
        print(' '.join('%d:%d' % item for item in sorted(counts.items())))
        """
        try client.write(toFile: root + "/client.py", atomically: true, encoding: .utf8)
        let clients = try (0..<2).map { _ in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = [root + "/client.py", String(nginx.port), asset]
            let out = Pipe()
            process.standardOutput = out
            process.standardError = FileHandle.nullDevice
            try process.run()
            return (process, out)
        }
        var flips = 0
        while clients.contains(where: { $0.0.isRunning }) {
            let target = flips % 2 == 0 ? "releases/b" : "releases/a"
            unlink(app + "/current.new")
            guard symlink(target, app + "/current.new") == 0, rename(app + "/current.new", app + "/current") == 0 else {
                throw FixtureError("switch: \(errno)")
            }
            flips += 1
        }
        var counts: [Int: Int] = [:]
        for (process, out) in clients {
            process.waitUntilExit()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            for pair in text.split(whereSeparator: \.isWhitespace) {
                let parts = pair.split(separator: ":").compactMap { Int($0) }
                if parts.count == 2 { counts[parts[0], default: 0] += parts[1] }
            }
        }
        print("nginx switch race: \(flips) switches of current, answers by status \(counts.sorted { $0.key < $1.key })")
        #expect(counts[200, default: 0] > 1_000, "\(counts)")
        #expect(counts.keys.allSatisfy { $0 == 200 }, "an asset a kept release holds was not served: \(counts)")
    }

    static func scratch() throws -> String {
        var template = Array((NSTemporaryDirectory() + "slipway-nginxrace-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw FixtureError("mkdtemp: \(errno)") }
        let path = String(cString: made)
        chmod(path, 0o755)  // nginx's workers run as nobody
        return path
    }

    static func write(_ text: String, to path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        chmod(path, 0o644)
    }
}
