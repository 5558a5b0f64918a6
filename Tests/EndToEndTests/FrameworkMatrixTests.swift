import Foundation
import Testing

/// docs/frameworks.md's recipes, each run as written with Debian's packages: deploy, then 3
/// deploys under load from a keep-alive client that retries once on a fresh connection, one
/// that never retries, and the mixed client through nginx. The retrying client and nginx must
/// see no failure; what the non-retrying client saw is printed for the matrix in the docs.
@Suite(.serialized, .endToEnd) struct FrameworkMatrixTests {
    /// Runs the recipe and checks the matrix's rules; returns the figures.
    @discardableResult
    static func runMatrix(_ name: String, files: [String: String], executable: Set<String> = [], backend: String,
                          env: [String: String] = [:], instances: Int = 2) throws -> FrameworkApp.Matrix {
        let app = try FrameworkApp(files: files, executable: executable, backend: backend, instances: instances, env: env, withNginx: true)
        try app.start(timeout: 120)
        var matrix = try app.deploysUnderLoad(3)
        // Steady keep-alive latency: one client, one connection, no deploy.
        let steady = try LoadRun(port: app.port, threads: 1, scratch: app.f.scratch, mode: "keepalive-noretry")
        sleep(3)
        matrix.steady = try steady.finish()
        print("matrix \(name): retrying \(matrix.retrying.line) | non-retrying \(matrix.nonRetrying.line) | nginx \(matrix.viaNginx?.line ?? "-") | steady keep-alive \(matrix.steady?.line ?? "-")")
        #expect(matrix.retrying.requests > 50 && matrix.nonRetrying.requests > 50, "\(name)")
        #expect(matrix.retrying.failed == 0, "\(name) retrying: \(matrix.retrying.errors)")
        #expect(matrix.viaNginx?.failed == 0, "\(name) via nginx: \(matrix.viaNginx?.errors ?? [])")
        #expect((matrix.viaNginx?.requests ?? 0) > 50, "\(name)")
        #expect(matrix.retrying.releases.count >= 2, "\(name) served only \(matrix.retrying.releases)")
        return matrix
    }

    @Test func expressUnmodified() throws {
        try Self.runMatrix("express", files: ["app.js": NodePreloadTests.expressApp], backend: """
        command: node app.js
        health: {path: /api/hello}
        """, env: ["NODE_PATH": "/usr/share/nodejs"])
    }

    @Test func flaskUnderGunicorn() throws {
        try Self.runMatrix("flask/gunicorn", files: ["app.py": Recipes.flask], backend: """
        command: gunicorn --workers 2 app:app
        ready: {notify: true, timeout: 30s}
        health: {path: /api/hello}
        stop: {signal: SIGTERM, timeout: 10s}
        """)
    }

    /// uvicorn serves one socket only: no health.path (which checks each worker on its fd 4).
    @Test func fastAPIUnderUvicornWithFD3() throws {
        let matrix = try Self.runMatrix("fastapi/uvicorn", files: ["app.py": Recipes.fastAPI], backend: """
        command: uvicorn app:app --fd 3
        stop: {signal: SIGTERM, timeout: 10s}
        """)
        // TCP_NODELAY on the listening socket: no ~40 ms Nagle/delayed-ACK wait per keep-alive answer.
        let p50 = try #require(matrix.steady?.p50)
        #expect(p50 < 5, "uvicorn keep-alive p50 \(p50) ms")
    }

    /// net.FileListener on fd 3 only: no health.path (go-systemd's activation.Listeners() serves fd 4 too).
    @Test func goNetHTTP() throws {
        try Self.runMatrix("go net/http", files: ["main.go": Recipes.goServer, "go.mod": "module example.com/web\n\ngo 1.19\n"], backend: """
        build: go build -o web .
        command: ./web
        stop: {signal: SIGTERM, timeout: 10s}
        """, env: ["GOFLAGS": "-mod=mod", "GOPROXY": "off"])
    }

    @Test func puma() throws {
        try Self.runMatrix("puma", files: ["config.ru": Recipes.rack], backend: """
        command: puma --bind-to-activated-sockets only --environment production config.ru
        health: {path: /api/hello}
        stop: {signal: SIGTERM, timeout: 10s}
        """, env: ["RACK_ENV": "production"])
    }
}

/// The apps of docs/frameworks.md, as each framework's docs write them.
enum Recipes {
    static let flask = """
    import os
    from flask import Flask

    app = Flask(__name__)

    @app.get("/api/hello")
    def hello():
        return "Hello, World!", 200, {"X-Release": os.environ.get("SLIPWAY_RELEASE", "dev")}
    """

    static let fastAPI = """
    import os
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse

    app = FastAPI()

    @app.get("/api/hello", response_class=PlainTextResponse)
    def hello():
        return PlainTextResponse("Hello, World!", headers={"X-Release": os.environ.get("SLIPWAY_RELEASE", "dev")})
    """

    static let goServer = """
    package main

    import (
    \t"context"
    \t"log"
    \t"net"
    \t"net/http"
    \t"os"
    \t"os/signal"
    \t"syscall"
    \t"time"
    )

    func main() {
    \t// fd 3 from Slipway (systemd socket activation); a port of its own when run by hand.
    \tvar listener net.Listener
    \tvar err error
    \tif os.Getenv("LISTEN_FDS") == "1" {
    \t\tlistener, err = net.FileListener(os.NewFile(3, os.Getenv("LISTEN_FDNAMES")))
    \t} else {
    \t\tlistener, err = net.Listen("tcp", "127.0.0.1:8080")
    \t}
    \tif err != nil {
    \t\tlog.Fatal(err)
    \t}
    \trelease := os.Getenv("SLIPWAY_RELEASE")
    \tmux := http.NewServeMux()
    \tmux.HandleFunc("/api/hello", func(w http.ResponseWriter, r *http.Request) {
    \t\tw.Header().Set("X-Release", release)
    \t\tw.Write([]byte("Hello, World!"))
    \t})
    \tserver := &http.Server{Handler: mux}
    \tstop := make(chan os.Signal, 1)
    \tsignal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
    \tdrained := make(chan struct{})
    \tgo func() {
    \t\t<-stop
    \t\tctx, cancel := context.WithTimeout(context.Background(), 9*time.Second)
    \t\tdefer cancel()
    \t\tserver.Shutdown(ctx) // stop accepting, finish in-flight requests
    \t\tclose(drained)
    \t}()
    \tif err := server.Serve(listener); err != http.ErrServerClosed {
    \t\tlog.Fatal(err)
    \t}
    \t<-drained // Serve returns at once on Shutdown: exiting now would cut in-flight requests
    }
    """

    /// The go-systemd variant (Debian's golang-github-coreos-go-systemd-dev and godbus, from
    /// /usr/share/gocode through go.mod's replace): dependencies the first build compiles.
    static let goSystemd = """
    package main

    import (
    	"log"
    	"net/http"

    	"github.com/coreos/go-systemd/v22/activation"
    	_ "github.com/coreos/go-systemd/v22/dbus"
    )

    func main() {
    	listeners, err := activation.Listeners()
    	if err != nil || len(listeners) != 1 {
    		log.Fatalf("want one socket from LISTEN_FDS: %v", err)
    	}
    	http.Serve(listeners[0], http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("Hello, World!")) }))
    }
    """

    static let goSystemdModule = """
    module example.com/web

    go 1.19

    require github.com/coreos/go-systemd/v22 v22.3.2

    require github.com/godbus/dbus/v5 v5.0.4 // indirect

    replace github.com/coreos/go-systemd/v22 => /usr/share/gocode/src/github.com/coreos/go-systemd

    replace github.com/godbus/dbus/v5 => /usr/share/gocode/src/github.com/godbus/dbus

    """

    static let rack = """
    run lambda { |env|
      if env["PATH_INFO"] == "/api/hello"
        [200, {"content-type" => "text/plain", "x-release" => ENV.fetch("SLIPWAY_RELEASE", "dev")}, ["Hello, World!"]]
      else
        [404, {"content-type" => "text/plain"}, ["not found"]]
      end
    }
    """
}
