import Foundation

/// Support/tinyworker.py as the workers of a running agent (WorkerApp's fixture with its source
/// and manifest replaced): ready in tens of milliseconds, for tests that run many rollouts.
enum TinyApp {
    static func make(instances: Int = 2, keep: Int = 2) throws -> WorkerApp {
        let app = try WorkerApp(instances: instances)
        let script = try String(contentsOfFile: WorkerApp.packageRoot + "/Tests/EndToEndTests/Support/tinyworker.py", encoding: .utf8)
        try app.f.commitSource(["worker.py": script], message: "tiny worker")
        app.instances = instances
        app.healthPath = "/"
        try app.f.commitManifest("demo.yaml", """
        app: demo
        source: {repo: \(app.f.sourceRepo), ref: main}
        releases: {keep: \(keep)}
        backend:
          command: /usr/bin/python3 -u worker.py
          instances: \(instances)
          listen: 127.0.0.1:\(app.port)
          ready: {notify: true, timeout: 10s}
          health: {path: /}
          stop: {signal: SIGTERM, timeout: 3s}
        """)
        return app
    }
}
