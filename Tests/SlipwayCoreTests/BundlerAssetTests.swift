import Testing
@testable import SlipwayCore

/// Every bundler's hashed names are immutable, any other file falls back to the frontend
/// archive, and `frontend.serve.immutable` adds prefixes and globs.
@Suite struct BundlerAssetTests {
    @Test func hashesOfEveryBundlerAreRecognised() throws {
        let pattern = try Regex(NginxSite.hashedAsset)
        let hashed = [
            "/assets/app-3f2c1a9b.js", "/assets/index.0123abcd4567.css",  // webpack, rollup (hex)
            "/main-VWVP5UOZ.js", "/chunk-2A7KQZ4M.js", "/main-ABCDEFGH.css",  // esbuild (base32)
            "/assets/index-B4x_kQ2a.js", "/assets/vendor-Dk3-9aZq.js", "/assets/index-a1B2c3D4.css",  // Vite 5 (base64url)
        ]
        for name in hashed { #expect(name.contains(pattern), "\(name)") }
        let plain = ["/assets/app.js", "/favicon.ico", "/assets/my-component.js", "/assets/app-3F2C1A9B.js", "/assets/app-3f2c1a9.js",
                     "/assets/main-MyWidget.js", "/assets/main-abcdefgh.js", "/jquery-3.6.0.min.js", "/index.html"]
        for name in plain { #expect(!name.contains(pattern), "\(name)") }
    }

    func render(_ serve: Serve) -> String {
        NginxSite.render(app: AppName("web")!, serve: serve, appRoot: "/srv/apps/web", archive: "frontend-archive", upstream: nil, source: "m.yaml")
    }

    @Test func anyNonHTMLFileMissingFromCurrentFallsBackToTheArchive() {
        let text = render(Serve(serverNames: ["a.test"]))
        #expect(text.contains("location ~ \"\\.[A-Za-z0-9]+$\" {\n        add_header Cache-Control \"no-cache\";\n        try_files /current/frontend$uri @archive_file;"))
        // The archive is Slipway's own link: symlinks are refused only below it (real nginx: BundlerFrontendTests).
        #expect(text.contains("location @archive_file {\n        add_header Cache-Control \"no-cache\";\n        disable_symlinks on from=$document_root/frontend-archive;\n        try_files /frontend-archive$uri =404;"))
        // HTML never comes from an older release.
        #expect(text.contains("location ~ \"\\.html?$\" {\n        add_header Cache-Control \"no-cache\";\n        try_files /current/frontend$uri =404;"))
    }

    @Test func immutablePrefixesAndGlobsDecodeAndRender() throws {
        let manifest = try ManifestDecoder.decode("""
        app: web
        source: {repo: /r.git, ref: main}
        frontend:
          output: dist
          serve:
            server_name: a.test
            immutable: [/static/, "/media/**", "/js/*.chunk.js"]
        """, file: "m.yaml").get()
        let serve = try #require(manifest.frontend?.serve)
        #expect(serve.immutable == [.prefix("/static/"), .glob("/media/**"), .glob("/js/*.chunk.js")])
        let text = render(serve)
        #expect(text.contains("    location ^~ /static/ {\n        add_header Cache-Control \"public, max-age=31536000, immutable\";\n        disable_symlinks on from=$document_root/frontend-archive;\n        try_files /frontend-archive$uri @current_asset;"))
        #expect(text.contains("    location ~ \"^/media/.*$\" {"))
        #expect(text.contains("    location ~ \"^/js/[^/]*\\.chunk\\.js$\" {"))
        // Before the hashed-asset location, so they win.
        #expect(text.range(of: "^~ /static/")!.lowerBound < text.range(of: "location ~ \"[.-]")!.lowerBound)
        let single = try ManifestDecoder.decode("app: web\nsource: {repo: /r.git, ref: main}\nfrontend:\n  output: dist\n  serve:\n    server_name: a.test\n    immutable: /assets/\n",
                                                file: "m.yaml").get()
        #expect(single.frontend?.serve?.immutable == [.prefix("/assets/")])
    }

    @Test func immutableEntriesThatCouldEscapeAreRefused() {
        for bad in ["assets/", "/a b/", "/a;}/", "/../x", "/a\"b", "/x/{1,2}"] {
            #expect(ImmutablePath.parse(bad) == nil, "\(bad)")
        }
        let result = ManifestDecoder.decode("app: web\nsource: {repo: /r.git, ref: main}\nfrontend:\n  output: dist\n  serve:\n    server_name: a.test\n    immutable: \"/a;b\"\n",
                                            file: "m.yaml")
        guard case .failure(let diagnostics) = result else { Issue.record("accepted"); return }
        #expect(diagnostics.items.first?.description.contains("is not a URL path prefix or glob") == true)
    }
}
