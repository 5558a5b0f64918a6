import Foundation
import Testing

/// Frontends built by Debian's esbuild (base32 hashes) and rollup (hex), served by a real nginx:
/// after 3 more deploys every file the first release's index.html could ask for still answers
/// 200 (from the frontend archive), hashed names are immutable, HTML is no-cache.
@Suite(.serialized, .endToEnd) struct BundlerFrontendTests {
    /// VERSION goes into a module both the entry and the lazy chunk import, so every deploy
    /// renames them all; `widget-<VERSION>.js` is a file whose name looks hashed to nobody.
    static func buildScript(_ bundle: String) -> String {
        """
        #!/bin/sh
        set -e
        rm -rf dist && mkdir -p dist/assets dist/legacy
        echo "export const version = '$(cat VERSION)'" > src/version.js
        \(bundle)
        main=$(cd dist/assets && ls main-*.js)
        printf '<!doctype html>\\n<script type="module" src="/assets/%s"></script>\\n<script src="/legacy/widget-%s.js"></script>\\n' "$main" "$(cat VERSION)" > dist/index.html
        echo "console.log('widget')" > "dist/legacy/widget-$(cat VERSION).js"
        """
    }

    static let sources = [
        "src/lazy.js": "import { version } from './version.js'\nexport const lazy = () => 'lazy ' + version\n",
        "src/main.js": "import { version } from './version.js'\nconsole.log(version)\nimport('./lazy.js').then((m) => console.log(m.lazy()))\n",
    ]

    func run(_ name: String, bundle: String, hashed: String) throws {
        let f = try Fixture(name: "bundler")
        let nginx = try TestNginx(root: f.root)
        try nginx.start()
        defer { nginx.stop() }
        try f.writeAgentConfig("listen: off\n" + nginx.agentConfig)
        try f.commitSource(Self.sources.merging(["build-frontend.sh": Self.buildScript(bundle), "VERSION": "v1"]) { $1 },
                           message: "v1", executable: ["build-frontend.sh"])
        try f.commitManifest("demo.yaml", """
        app: demo
        source: {repo: \(f.sourceRepo), ref: main}
        releases: {keep: 5}
        frontend:
          build: ./build-frontend.sh
          output: dist
          serve:
            server_name: localhost
            listen: 127.0.0.1:\(nginx.port)
            spa: true
        """)
        let first = try f.pass(timeout: 120)
        let v1 = "\(f.appsRoot)/demo/current/frontend"
        let files = try #require(FileManager.default.subpaths(atPath: v1), "\(first.output)").filter {
            !isDirectory(v1 + "/" + $0)
        }.sorted()
        let hashedFiles = files.filter { $0.range(of: hashed, options: .regularExpression) != nil }
        #expect(hashedFiles.count >= 2, "\(name) built \(files)")  // the entry and the lazy chunk at least
        #expect(files.contains("legacy/widget-v1.js"))
        let oldIndex = try nginx.get("/")
        #expect(oldIndex.status == 200 && oldIndex.body.contains("widget-v1.js"))
        for version in 2...4 {
            try f.commitSource(["VERSION": "v\(version)"], message: "v\(version)")
            let result = try f.pass(timeout: 120)
            #expect(f.currentFile("frontend/index.html")?.contains("widget-v\(version).js") == true, "\(result.output)")
        }
        // The first release's files are gone from current: what follows is served from the archive.
        let now = Set(FileManager.default.subpaths(atPath: v1) ?? [])
        #expect(hashedFiles.allSatisfy { !now.contains($0) }, "\(name): the deploys did not rename every hashed file")
        for file in files where file != "index.html" {
            let answer = try nginx.get("/" + file)
            #expect(answer.status == 200, "\(name): /\(file) → \(answer.status)")
            let cache = answer.headers["cache-control"] ?? ""
            if hashedFiles.contains(file) {
                #expect(cache == "public, max-age=31536000, immutable", "\(name): /\(file) has \(cache)")
            } else {
                #expect(cache == "no-cache", "\(name): /\(file) has \(cache)")
            }
        }
        let index = try nginx.get("/index.html")
        #expect(index.headers["cache-control"] == "no-cache" && index.body.contains("widget-v4.js"))
        #expect(try nginx.get("/assets/main-NOPE2345.js").status == 404)
        print("\(name): \(files.count) files of the first release, \(hashedFiles.count) hashed, all 200 after 3 deploys")
    }

    @Test func esbuild() throws {
        try run("esbuild", bundle: "esbuild src/main.js --bundle --splitting --format=esm --outdir=dist/assets --entry-names='[name]-[hash]' --chunk-names='chunk-[hash]' --log-level=warning",
                hashed: "-[A-Z2-7]{8}\\.js$")
    }

    @Test func rollup() throws {
        try run("rollup", bundle: "rollup src/main.js --silent --format es --dir dist/assets --entryFileNames '[name]-[hash].js' --chunkFileNames 'chunk-[hash].js'",
                hashed: "-[0-9a-f]{8}\\.js$")
    }
}

private func isDirectory(_ path: String) -> Bool {
    var isDirectory: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
}
