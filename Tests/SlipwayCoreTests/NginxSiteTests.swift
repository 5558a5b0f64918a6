import Testing
@testable import SlipwayCore

/// `frontend.serve` and the nginx server block rendered from it, without nginx.
@Suite struct NginxSiteTests {
    func decode(_ serve: String, backend: String = "backend:\n  command: node s.js\n  listen: 127.0.0.1:3000\n") -> Result<Manifest, Diagnostics> {
        ManifestDecoder.decode("app: platform\nsource: {repo: /r.git, ref: main}\nfrontend:\n  output: dist\n  serve:\n" + serve + backend,
                               file: "m.yaml")
    }

    func problems(_ serve: String, backend: String = "backend:\n  command: node s.js\n  listen: 127.0.0.1:3000\n") -> [String] {
        switch decode(serve, backend: backend) {
        case .success: return []
        case .failure(let diagnostics): return diagnostics.items.map(\.description)
        }
    }

    @Test func theIssuesServeSectionDecodes() throws {
        let serve = try #require(try decode("""
            server_name: platform.example.com
            listen: 80
            spa: true
            api:
              path: /api/
              read_timeout: 60s

        """).get().frontend?.serve)
        #expect(serve == Serve(serverNames: ["platform.example.com"], listen: .port(80), spa: true, api: .init(path: "/api/", readTimeout: .seconds(60))))
        let defaults = try #require(try decode("    server_name: [a.example.com, '*.b.example.com']\n").get().frontend?.serve)
        #expect(defaults == Serve(serverNames: ["a.example.com", "*.b.example.com"]))
        #expect(try decode("    server_name: a.test b.test\n    listen: 127.0.0.1:8080\n").get().frontend?.serve?.listen == .address(host: "127.0.0.1", port: 8080))
        #expect(try decode("    server_name: \"~^(www\\\\.)?example\\\\.com$\"\n").get().frontend?.serve?.serverNames == ["~^(www\\.)?example\\.com$"])
    }

    /// Where the agent connects after a reload to see that nginx took it (a wildcard is loopback).
    @Test func aListenIsProbedWhereNginxBindsIt() throws {
        func probe(_ text: String) throws -> String {
            let address = try #require(ServeListen.parse(text)).probeAddress
            return "\(address.host) \(address.port)"
        }
        #expect(try probe("80") == "127.0.0.1 80")
        #expect(try probe("0.0.0.0:8080") == "127.0.0.1 8080")
        #expect(try probe("[::]:8080") == "::1 8080")
        #expect(try probe("127.0.0.2:81") == "127.0.0.2 81")
        #expect(try probe("[::1]:81") == "::1 81")
        #expect(try probe("localhost:82") == "localhost 82")
    }

    @Test func namesThatCouldBreakOutOfTheDirectiveAreRefused() {
        for bad in ["\"a.com; root /\"", "\"a.com{\"", "\"a'b\"", "\"a#b\"", "\"caf\u{E9}.fr\"", "\"a/b\""] {
            #expect(problems("    server_name: \(bad)\n").first?.contains("is not a host name nginx can match") == true, "\(bad)")
        }
        #expect(problems("    server_name: a.test\n    listen: 70000\n").first?.contains("neither a port nor host:port") == true)
        #expect(problems("    server_name: a.test\n    api: {path: api}\n").first?.contains("must be a URL prefix like /api/") == true)
        #expect(problems("    server_name: a.test\n    api: {path: \"/a;b/\"}\n").first?.contains("must be a URL prefix") == true)
        #expect(problems("    server_name: a.test\n    api: {path: /api/}\n", backend: "").first?.contains("proxies /api/ to backend.listen, which is not set") == true)
        #expect(problems("    listen: 80\n").first?.contains("frontend.serve is missing the required key 'server_name'") == true)
        #expect(problems("    server_name: a.test\n    sap: true\n").first?.contains("did you mean 'spa'?") == true)
    }

    @Test func serveStaysOutOfTheReleaseFingerprint() throws {
        let a = try decode("    server_name: a.test\n").get()
        let b = try decode("    server_name: b.test\n    spa: true\n").get()
        #expect(ReleaseSpec(manifest: a, sourceSHA: "x").fingerprint == ReleaseSpec(manifest: b, sourceSHA: "x").fingerprint)
    }

    func render(_ serve: Serve, upstream: NginxSite.Upstream? = .tcp(host: "127.0.0.1", port: 3000), appRoot: String = "/var/lib/slipway/apps/platform") -> String {
        NginxSite.render(app: AppName("my-app")!, serve: serve, appRoot: appRoot, archive: "frontend-archive", upstream: upstream, source: "manifests/my-app.yaml")
    }

    @Test func theServerBlockServesFromCurrentWithTheRightCachingAndNoIf() {
        let text = render(Serve(serverNames: ["platform.example.com", "www.platform.example.com"], listen: .port(80), spa: true,
                                api: .init(path: "/api/", readTimeout: .seconds(90))))
        #expect(text.contains("    listen 80;\n    server_name platform.example.com www.platform.example.com;\n    root \"/var/lib/slipway/apps/platform\";"))
        // Hashed assets: the kept releases' files first (a switch of current between try_files'
        // stat and the open cannot make one a 404), then current.
        #expect(text.contains("add_header Cache-Control \"public, max-age=31536000, immutable\";\n        disable_symlinks on from=$document_root/frontend-archive;\n        try_files /frontend-archive$uri @current_asset;"))
        #expect(text.contains("    location @current_asset {\n        add_header Cache-Control \"public, max-age=31536000, immutable\";\n        try_files /current/frontend$uri =404;"))
        #expect(text.contains("    index index.html;\n") && text.contains("    disable_symlinks on from=$document_root/current/frontend;\n"))
        #expect(text.contains("location ~ \"\\.html?$\" {\n        add_header Cache-Control \"no-cache\";\n        try_files /current/frontend$uri =404;"))
        #expect(text.contains("try_files /current/frontend$uri /current/frontend$uri/index.html @index;"))
        #expect(text.contains("location ^~ /api/ {\n        proxy_pass http://slipway_my_app_workers;\n        proxy_next_upstream error timeout;"))
        #expect(text.contains("upstream slipway_my_app_workers {") && text.components(separatedBy: "    server 127.0.0.1:3000 max_fails=0;\n").count == 3)
        #expect(text.contains("map $http_upgrade $slipway_my_app_connection {"))
        #expect(text.contains("proxy_set_header Connection $slipway_my_app_connection;"))
        #expect(text.contains("proxy_read_timeout 90s;"))
        // nginx's "if is evil": none at all.
        #expect(!text.split(separator: "\n").contains { $0.trimmingCharacters(in: .whitespaces).hasPrefix("if ") })
        // Every file lookup is under current/frontend or the archive: never a bare $uri.
        for line in text.split(separator: "\n") where line.contains("try_files") {
            #expect(!line.contains(" $uri"), "\(line)")
        }
        // The same input renders the same bytes (an unchanged manifest never reloads nginx).
        #expect(text == render(Serve(serverNames: ["platform.example.com", "www.platform.example.com"], listen: .port(80), spa: true,
                                     api: .init(path: "/api/", readTimeout: .seconds(90)))))
    }

    @Test func withoutSPAOrAPIThereIsNoFallbackAndNoProxy() {
        let text = render(Serve(serverNames: ["a.test"], listen: .address(host: "::1", port: 8080)), upstream: nil)
        #expect(text.contains("listen [::1]:8080;"))
        #expect(text.contains("try_files /current/frontend$uri /current/frontend$uri/index.html =404;"))
        #expect(!text.contains("@index") && !text.contains("proxy_pass") && !text.contains("map "))
    }

    @Test func upstreamsAndPathsAreWrittenSafely() {
        #expect(NginxSite.Upstream.tcp(host: "0.0.0.0", port: 3000).proxyPass == "http://127.0.0.1:3000")
        #expect(NginxSite.Upstream.tcp(host: "::1", port: 3000).proxyPass == "http://[::1]:3000")
        #expect(NginxSite.Upstream.unix(path: "/srv/apps/x/run/web.sock").proxyPass == "http://unix:/srv/apps/x/run/web.sock:")
        #expect(NginxSite.Upstream.unix(path: "/srv/apps/x/run/web.sock").serverAddress == "unix:/srv/apps/x/run/web.sock")
        #expect(NginxSite.Upstream.tcp(host: "::", port: 3000).serverAddress == "[::1]:3000")
        #expect(NginxSite.quoted("/a \"b\"\\c") == "\"/a \\\"b\\\"\\\\c\"")
        #expect(NginxSite.fileName(for: AppName("platform")!) == "slipway-platform.conf")
        #expect(NginxSite.isOwnedFile("slipway-platform.conf") && !NginxSite.isOwnedFile("default") && !NginxSite.isOwnedFile("slipway-.conf"))
        #expect(!NginxSite.isOwnedFile("slipway-Bad_Name.conf"))
    }

    @Test func theHashedAssetPatternMatchesContentHashesOnly() throws {
        let pattern = try Regex(NginxSite.hashedAsset)
        for hashed in ["/assets/app-3f2c1a9b.js", "/assets/chunk.0123abcd4567.css", "/x/vendor-deadbeef.mjs"] {
            #expect(hashed.contains(pattern), "\(hashed)")
        }
        for plain in ["/assets/app.js", "/favicon.ico", "/assets/my-component.js", "/assets/app-3F2C1A9B.js", "/assets/app-3f2c1a9.js"] {
            #expect(!plain.contains(pattern), "\(plain)")
        }
    }

    @Test func theAgentConfigsNginxSection() throws {
        let config = try AgentConfig.decode("manifests: {repo: /m.git}\nnginx: {sites_dir: /etc/nginx/conf.d, reload: systemctl reload nginx}\n",
                                            file: "a.yaml", hostname: "h").get()
        #expect(config.nginx == .init(sitesDir: "/etc/nginx/conf.d", test: "nginx -t -q", reload: "systemctl reload nginx"))
        #expect(try AgentConfig.decode("manifests: {repo: /m.git}\n", file: "a.yaml", hostname: "h").get().nginx == nil)
        #expect(try AgentConfig.decode("manifests: {repo: /m.git}\nnginx: {}\n", file: "a.yaml", hostname: "h").get().nginx == .init())
        #expect(config.nginx?.pidFile == "/run/nginx.pid", "systemctl reload nginx signals Debian's service")
        #expect(AgentConfig.Nginx().pidFile == "/run/nginx.pid")
        func pidFile(_ nginx: String) throws -> String? {
            try AgentConfig.decode("manifests: {repo: /m.git}\nnginx: \(nginx)\n", file: "a.yaml", hostname: "h").get().nginx?.pidFile
        }
        #expect(try pidFile("{pid_file: /var/run/web/nginx.pid}") == "/var/run/web/nginx.pid")
        // Another reload command may signal another nginx: its pid file is not guessed.
        #expect(try pidFile("{reload: nginx -c /srv/web/nginx.conf -s reload}") == nil)
        #expect(try pidFile("{reload: nginx -c /srv/web/nginx.conf -s reload, pid_file: /srv/web/nginx.pid}") == "/srv/web/nginx.pid")
        #expect(try pidFile("{pid_file: /srv/web/nginx.pid, reload: nginx -c /srv/web/nginx.conf -s reload}") == "/srv/web/nginx.pid")
    }

    @Test func aRelativeOrDirectoryPidFileIsRefusedWhereItIsWritten() {
        for bad in ["run/nginx.pid", "/run/../tmp/nginx.pid", "/run/"] {
            let result = AgentConfig.decode("manifests: {repo: /m.git}\nnginx:\n  pid_file: \(bad)\n", file: "a.yaml", hostname: "h")
            guard case .failure(let error) = result else {
                Issue.record("\(bad) was taken")
                continue
            }
            #expect("\(error)".contains("a.yaml:3:13: nginx.pid_file must be an absolute file path without '..', not '\(bad)'"), "\(error)")
        }
    }
}
