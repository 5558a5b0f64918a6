import Testing
import Foundation
@testable import SlipwayCore

@Suite struct ManifestTests {
    static let valid = """
    app: platform
    source:
      repo: /srv/git/platform.git
      ref: 3f2c1a9b3f2c1a9b3f2c1a9b3f2c1a9b3f2c1a9b
    hosts: [web-1, web-2]
    releases:
      keep: 3
    shared: [storage, logs/app]
    env: {NODE_ENV: production, PORT: 3000, EMPTY: }
    build_timeout: 90s
    frontend:
      build: npm ci && npm run build
      output: dist
    backend:
      build: npm ci --omit=dev
      dir: server
    """

    func decode(_ text: String) -> Result<Manifest, Diagnostics> {
        ManifestDecoder.decode(text, file: "m.yaml")
    }

    /// The rendered diagnostics, one string each.
    func problems(_ text: String) -> [String] {
        switch decode(text) {
        case .success: return []
        case .failure(let diagnostics): return diagnostics.items.map(\.description)
        }
    }

    func base(_ extra: String, source: String = "source: {repo: /r.git, ref: main}\n", sections: String = "backend: {}\n") -> String {
        "app: demo\n" + source + sections + extra
    }

    @Test func aFullManifestDecodes() throws {
        let manifest = try decode(Self.valid).get()
        #expect(manifest.app.value == "platform")
        #expect(manifest.source.repo == "/srv/git/platform.git")
        #expect(manifest.source.ref == .commit("3f2c1a9b3f2c1a9b3f2c1a9b3f2c1a9b3f2c1a9b"))
        #expect(manifest.hosts == ["web-1", "web-2"])
        #expect(manifest.keep == 3)
        #expect(manifest.shared.map(\.value) == ["storage", "logs/app"])
        #expect(manifest.env.map(\.name) == ["EMPTY", "NODE_ENV", "PORT"])
        #expect(manifest.env.first { $0.name == "PORT" }?.value == "3000")
        #expect(manifest.buildTimeout == .seconds(90))
        #expect(manifest.frontend == .init(build: "npm ci && npm run build", output: RelativePath("dist")!))
        #expect(manifest.backend == .init(build: "npm ci --omit=dev", dir: RelativePath("server")!))
        #expect(manifest.runs(on: "web-1"))
        #expect(!manifest.runs(on: "web-3"))
    }

    @Test func defaultsApply() throws {
        let manifest = try decode(base("")).get()
        #expect(manifest.keep == 5)
        #expect(manifest.buildTimeout == .seconds(900))
        #expect(manifest.hosts == nil)
        #expect(manifest.runs(on: "anything"))
        #expect(manifest.backend?.dir == .root)
        #expect(manifest.source.ref == .name("main"))
    }

    @Test func unknownKeysSuggestTheClosestKnownOne() {
        #expect(problems(base("", sections: "frontend:\n  ouptut: dist\n")).contains(
            "m.yaml:4:3: unknown key 'ouptut' in frontend — did you mean 'output'?"))
        #expect(problems(base("relases: {keep: 2}\n")).contains(
            "m.yaml:4:1: unknown key 'relases' in the manifest — did you mean 'releases'?"))
        #expect(problems(base("colour: blue\n")).first?.contains("unknown key 'colour' in the manifest — known keys here: app, source") == true)
    }

    @Test func requiredKeysAreNamedWithAnExample() {
        #expect(problems("source: {repo: /r.git, ref: main}\nbackend: {}\n").contains(
            "m.yaml:1:1: the manifest is missing the required key 'app' — add it, for example 'app: platform'"))
        #expect(problems("app: demo\nbackend: {}\n").first?.contains("missing the required key 'source'") == true)
        #expect(problems("app: demo\nsource: {repo: /r.git}\nbackend: {}\n").first?.contains("'ref'") == true)
        #expect(problems(base("", sections: "frontend: {build: make}\n")).first?.contains("missing the required key 'output'") == true)
    }

    @Test(arguments: ["Platform", "-lead", "has_underscore", "with space", String(repeating: "a", count: 64), ""])
    func invalidAppNames(_ name: String) {
        let text = "app: \"\(name)\"\nsource: {repo: /r.git, ref: main}\nbackend: {}\n"
        #expect(problems(text).first?.contains("app name '\(name)' is not valid") == true)
    }

    @Test(arguments: ["a", "platform", "web-2", "0day", String(repeating: "a", count: 63)])
    func validAppNames(_ name: String) {
        #expect(AppName(name) != nil)
    }

    @Test func repoLocations() {
        for ok in ["/srv/git/x.git", "file:///srv/x.git", "https://git.example.com/x.git", "ssh://git@h/x.git", "git@host:team/x.git"] {
            #expect(SourceLocation.isAcceptable(ok), "\(ok)")
        }
        for bad in ["relative/path", "x.git", "/srv/../etc", "https://", "ftp://x", "-oProxyCommand=x"] {
            #expect(!SourceLocation.isAcceptable(bad), "\(bad)")
        }
        #expect(problems(base("", source: "source: {repo: relative, ref: main}\n")).first?.contains(
            "m.yaml:2:16: source.repo 'relative' is not a repository location Slipway can fetch — use an absolute path") == true)
    }

    @Test func refs() {
        #expect(GitRef("3F2C1A9B3F2C1A9B3F2C1A9B3F2C1A9B3F2C1A9B") == .commit("3f2c1a9b3f2c1a9b3f2c1a9b3f2c1a9b3f2c1a9b"))
        #expect(GitRef("v1.2.0") == .name("v1.2.0"))
        #expect(GitRef("feature/x") == .name("feature/x"))
        for bad in ["a..b", "-x", "x.lock", "a b", "x~1", "x^", "a:b", "@", "x/", "x@{1}"] {
            #expect(GitRef(bad) == nil, "\(bad)")
        }
        #expect(problems(base("", source: "source: {repo: /r.git, ref: 'a..b'}\n")).first?.contains("neither a full commit id nor a valid tag or branch name") == true)
    }

    @Test func pathsThatWouldEscapeAreRefused() {
        #expect(problems(base("", sections: "frontend: {output: ../x}\n")).first?.contains("frontend.output '../x' is not allowed: '..' would leave the app's directory") == true)
        #expect(problems(base("", sections: "frontend: {output: /var/www}\n")).first?.contains("an absolute path would leave") == true)
        #expect(problems(base("", sections: "frontend: {output: .}\n")).first?.contains("must name a subdirectory") == true)
        #expect(problems(base("", sections: "backend: {dir: a/../../b}\n")).first?.contains("backend.dir 'a/../../b' is not allowed") == true)
        #expect(problems(base("shared: [../etc]\n")).first?.contains("shared entry '../etc' is not allowed") == true)
        #expect(problems(base("shared: [a, a]\n")).first?.contains("listed twice") == true)
        #expect(problems(base("shared: storage\n")).first?.contains("shared must be a list") == true)
    }

    @Test func relativePathsNormalise() {
        #expect(RelativePath("./a//b/")?.value == "a/b")
        #expect(RelativePath(".")?.isRoot == true)
        #expect(RelativePath("a/./b")?.components == ["a", "b"])
        #expect(RelativePath("a\u{0}b") == nil)
        #expect(RelativePath("~/x") == nil)
    }

    @Test func numbersDurationsAndEnv() {
        #expect(problems(base("releases: {keep: 0}\n")).first?.contains("releases.keep must be between 1 and 100, not 0") == true)
        #expect(problems(base("releases: {keep: many}\n")).first?.contains("releases.keep must be a whole number, not 'many'") == true)
        #expect(problems(base("releases: {keep: \"5\"}\n")).first?.contains("must be a whole number") == true)
        #expect(problems(base("build_timeout: 15\n")).first?.contains("build_timeout must be a duration, not '15' — write a number and a unit") == true)
        #expect(problems(base("build_timeout: 0s\n")).first?.contains("at least 1s") == true)
        #expect(problems(base("env: {1BAD: x}\n")).first?.contains("env name '1BAD' is not a valid variable name") == true)
        #expect(problems(base("env: {SLIPWAY_APP: x}\n")).first?.contains("reserved for Slipway") == true)
        #expect(problems(base("env: {LISTEN_FDS: x}\n")).first?.contains("reserved") == true)
        #expect(problems(base("env: [A, B]\n")).first?.contains("env must be a mapping") == true)
        #expect(problems(base("env: {A: {nested: 1}}\n")).first?.contains("env.A must be a single value, not a mapping") == true)
        #expect(problems(base("hosts: web-1\n")).first?.contains("hosts must be a list") == true)
    }

    @Test func sectionsMustGiveSomethingToDeploy() {
        #expect(problems("app: demo\nsource: {repo: /r.git, ref: main}\n").first?.contains("neither 'frontend' nor 'backend'") == true)
        #expect(problems("app: demo\nsource: {repo: /r.git, ref: main}\nfrontend: {output: dist}\nshared: [x]\n").contains {
            $0.contains("'shared' directories are linked into the backend")
        })
        #expect(problems(base("", sections: "frontend: {output: web}\nbackend: {dir: web}\n")).first?.contains("are the same directory") == true)
        #expect(problems(base("", sections: "frontend: dist\n")).first?.contains("frontend must be a mapping, not a scalar") == true)
    }

    @Test func everyProblemIsReportedNotJustTheFirst() {
        let all = problems("app: BAD\nsource: {repo: x, ref: 'a b'}\nreleases: {keep: 0}\nbackend: {dir: ../x}\n")
        #expect(all.count == 5)
    }

    @Test func yamlErrorsBecomeDiagnostics() {
        #expect(problems("app: demo\napp: again\n") == ["m.yaml:2:1: duplicate key 'app'; each key may appear once in a mapping"])
        #expect(problems("- just\n- a list\n").first?.contains("the manifest must be a mapping, not a list") == true)
    }

    @Test func duplicateAppsAcrossFilesNameBothFiles() {
        let text = "app: demo\nsource: {repo: /r.git, ref: main}\nbackend: {}\n"
        let set = ManifestSet(files: [.init(path: "b.yaml", text: text), .init(path: "a.yaml", text: text),
                                      .init(path: "c.yaml", text: text.replacingOccurrences(of: "demo", with: "other"))])
        #expect(set.valid.keys.map(\.value) == ["other"])
        #expect(set.invalid.map(\.path) == ["a.yaml", "b.yaml"])
        #expect(set.allDiagnostics.map(\.description).contains(
            "a.yaml:1:6: app 'demo' is also declared in b.yaml:1:6 — each app has exactly one manifest; rename one of them or remove the copy"))
        #expect(set.invalid.allSatisfy { $0.app?.value == "demo" })
    }

    @Test func anInvalidManifestStillNamesItsApp() {
        let set = ManifestSet(files: [.init(path: "a.yaml", text: "app: demo\nsource: {repo: nope, ref: main}\nbackend: {}\n")])
        #expect(set.invalid.first?.app?.value == "demo")
        #expect(set.valid.isEmpty)
    }

    @Test func manifestPaths() {
        #expect(ManifestSet.isManifestPath("manifests/a.yaml"))
        #expect(ManifestSet.isManifestPath("a.yml"))
        #expect(!ManifestSet.isManifestPath("README.md"))
    }

    @Test func suggestions() {
        #expect(Suggestion.editDistance("ouptut", "output") == 1)
        #expect(Suggestion.closest(to: "bild", among: ["build", "output"]) == "build")
        #expect(Suggestion.closest(to: "zzzzzz", among: ["build", "output"]) == nil)
    }
}

@Suite struct DeclaredAppTests {
    @Test func foundEvenWhenTheYAMLDoesNotParse() {
        #expect(ManifestSet.declaredApp(in: "app: demo\nsource:\n  repo: x: y\n").0?.value == "demo")
        #expect(ManifestSet.declaredApp(in: "app: \"demo\" # the app\nx: [\n").0?.value == "demo")
        #expect(ManifestSet.declaredApp(in: "app: demo\nx: [\n").1 == SourceMark(line: 1, column: 6))
        #expect(ManifestSet.declaredApp(in: "  app: nested\nx: [\n").0 == nil)
        #expect(ManifestSet.declaredApp(in: "source: {}\n").0 == nil)
    }
}

@Suite struct OversizedManifestTests {
    @Test func aFileTooLargeToReadIsInvalidWithItsSize() {
        let set = ManifestSet(files: [.init(path: "big.yaml", text: "", tooLarge: 5_000_000)])
        #expect(set.valid.isEmpty)
        #expect(set.allDiagnostics.map(\.description) == [
            "big.yaml:1:1: the file is 5000000 bytes; a manifest may be at most 1048576 — one app per file, and no data in manifests",
        ])
    }
}
