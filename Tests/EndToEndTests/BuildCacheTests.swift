import Foundation
import Testing

/// Builds run with HOME, GOCACHE, PIP_CACHE_DIR… in the app's build home, kept across releases:
/// a second build reuses the first one's work, and `slipway cache clear` starts it over.
@Suite(.serialized, .endToEnd) struct BuildCacheTests {
    /// The build stage's duration of the release `current` names, in ms (from its release.json).
    static func buildMilliseconds(_ f: Fixture) throws -> Int64 {
        let current = try #require(f.current())
        let data = try #require(FileManager.default.contents(atPath: "\(f.appsRoot)/demo/releases/\(current)/release.json"))
        let record = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let stages = record["stages"] as? [[String: Any]] ?? []
        return try #require(stages.first { $0["stage"] as? String == "build" }?["milliseconds"] as? Int64)
    }

    /// Deploys 4 commits: cold, warm, `cache clear` then cold again, warm. Returns (cold, warm)
    /// build times in ms, the better of the two of each; `observe` is called after each build
    /// with its number (0...3).
    static func coldAndWarm(_ f: Fixture, files: [String: String], build: String, env: [String: String],
                            observe: (Int) -> Void = { _ in }) throws -> (cold: Int64, warm: Int64) {
        let envLines = env.sorted { $0.key < $1.key }.map { "  \($0.key): \(Fixture.yamlQuoted($0.value))" }.joined(separator: "\n")
        try f.commitManifest("demo.yaml", """
        app: demo
        source: {repo: \(f.sourceRepo), ref: main}
        env:
        \(envLines)
        backend:
          build: \(Fixture.yamlQuoted(build))
        """)
        var cold: [Int64] = [], warm: [Int64] = []
        for round in 0..<2 {
            if round == 1 {
                let cleared = try f.slipway(["cache", "clear", "demo"])
                #expect(cleared.status == 0 && cleared.stdout.contains("cleared"), "\(cleared.output)")
                #expect(!FileManager.default.fileExists(atPath: "\(f.appsRoot)/demo/.slipway/home"))
            }
            for pass in 0..<2 {
                try f.commitSource(files.merging(["VERSION": "r\(round)p\(pass)"]) { $1 }, message: "r\(round)p\(pass)")
                let result = try f.pass(timeout: 300)
                guard f.currentFile("backend/BUILT")?.contains("built") == true else {
                    throw FixtureError("the build failed: \(result.output)")
                }
                observe(round * 2 + pass)
                let ms = try buildMilliseconds(f)
                if pass == 0 { cold.append(ms) } else { warm.append(ms) }
            }
        }
        return (cold.min()!, warm.min()!)
    }

    @Test func aGoBuildReusesItsCache() throws {
        let f = try Fixture(name: "gocache")
        let (cold, warm) = try Self.coldAndWarm(f, files: ["main.go": Recipes.goSystemd, "go.mod": Recipes.goSystemdModule],
                                                build: "go build -o web . && test -d \"$GOCACHE\" && echo built > BUILT",
                                                env: ["GOFLAGS": "-mod=mod", "GOPROXY": "off"])
        print("build cache, go build (net/http + Debian's go-systemd and godbus): without cache \(cold) ms, with cache \(warm) ms")
        #expect(warm < cold)
        // The cache is the app account's, in its build home.
        var info = stat()
        #expect(lstat("\(f.appsRoot)/demo/.slipway/home/.cache/go-build", &info) == 0)
        if geteuid() == 0 { #expect(info.st_uid != 0) }
    }

    @Test func aPipInstallBuildReusesItsWheelCache() throws {
        let f = try Fixture(name: "pipcache")
        // A local package index (a fixed path, as an index URL is): an sdist pip must build.
        let index = f.scratch + "/index"
        let package = f.root + "/pkg"
        try f.write("[build-system]\nrequires = [\"setuptools\"]\nbuild-backend = \"setuptools.build_meta\"\n[project]\nname = \"demo-pkg\"\nversion = \"1.0\"\n",
                    to: package + "/pyproject.toml")
        try f.write("from setuptools import setup\nsetup()\n", to: package + "/setup.py")
        try f.write("GREETING = 'hello'\n", to: package + "/demo_pkg/__init__.py")
        try FileManager.default.createDirectory(atPath: index, withIntermediateDirectories: true)
        let tar = try Fixture.run("/usr/bin/tar", ["czf", index + "/demo-pkg-1.0.tar.gz", "-C", f.root, "--transform", "s,^pkg,demo-pkg-1.0,", "pkg"], timeout: 30)
        #expect(tar.status == 0, "\(tar.output)")
        chmod(index, 0o755)
        // The wheels in the build home after each build, by inode: a warm build reuses the wheel
        // the cold one built (the same file), and one after `cache clear` builds it again. (It
        // compared the build times before: a pip run of 1-2 s on a busy CI host made a warm build
        // slower than a cold one, 2,713 ms against 2,094 ms, once.)
        let wheels = "\(f.appsRoot)/demo/.slipway/home/.cache/pip/wheels"
        var seen: [[String: UInt64]] = []
        let (cold, warm) = try Self.coldAndWarm(f, files: ["requirements.txt": "demo-pkg\n"],
                                                build: "/usr/bin/python3 -m pip install -q --no-index --no-build-isolation --find-links \(index) --target vendor -r requirements.txt && test -d \"$PIP_CACHE_DIR/wheels\" && echo built > BUILT",
                                                env: ["PIP_CONFIG_FILE": "/dev/null", "PIP_DISABLE_PIP_VERSION_CHECK": "1"]) { _ in
            seen.append(Self.files(below: wheels).filter { $0.key.hasSuffix(".whl") })
        }
        print("build cache, pip install (an sdist built into a wheel): without cache \(cold) ms, with cache \(warm) ms")
        try #require(seen.count == 4)
        #expect(seen[0].count == 1 && seen[1] == seen[0], "the warm build did not reuse the cold one's wheel: \(seen)")
        #expect(seen[2].count == 1 && seen[3] == seen[2], "the build after cache clear made no wheel, or the warm one did not reuse it: \(seen)")
    }

    /// Every file below `directory` with its inode (no link followed).
    static func files(below directory: String) -> [String: UInt64] {
        var found: [String: UInt64] = [:]
        guard let walk = FileManager.default.enumerator(atPath: directory) else { return found }
        while let relative = walk.nextObject() as? String {
            var info = stat()
            if lstat(directory + "/" + relative, &info) == 0, info.st_mode & S_IFMT == S_IFREG { found[relative] = UInt64(info.st_ino) }
        }
        return found
    }
}
