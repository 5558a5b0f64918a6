import Foundation

/// A Flask app under Debian's gunicorn, run as the workers of a running agent (WorkerApp's
/// fixture with its source and manifest replaced). `/` answers with its release in X-Release;
/// `/health` answers the status written in the release's HEALTH file, so a test pushes a
/// release whose health check fails with `deployNewVersion("bad", files: ["HEALTH": "500"])`.
enum FlaskApp {
    static let source = """
    import os
    from flask import Flask

    app = Flask(__name__)
    release = os.environ.get("SLIPWAY_RELEASE", "dev")
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "HEALTH")) as f:
        health = int(f.read().strip() or "200")

    @app.after_request
    def tag(response):
        response.headers["X-Release"] = release
        return response

    @app.get("/")
    def index():
        return "hello from %s (pid %d)\\n" % (release, os.getpid())

    @app.get("/health")
    def check():
        return ("health %d\\n" % health, health)

    """

    /// `gunicornWorkers` processes under each of the `instances` gunicorn masters.
    static func make(instances: Int = 1, gunicornWorkers: Int = 2, keep: Int = 10) throws -> WorkerApp {
        let app = try WorkerApp(instances: instances)
        try app.f.commitSource(["app.py": source, "HEALTH": "200\n"], message: "flask v1")
        try commitManifest(app, instances: instances, gunicornWorkers: gunicornWorkers, keep: keep)
        app.healthPath = "/health"
        return app
    }

    static func commitManifest(_ app: WorkerApp, instances: Int, gunicornWorkers: Int = 2, keep: Int = 10, extra: String = "") throws {
        app.instances = instances
        try app.f.commitManifest("demo.yaml", """
        app: demo
        source: {repo: \(app.f.sourceRepo), ref: main}
        releases: {keep: \(keep)}
        env: {PYTHONDONTWRITEBYTECODE: "1"}
        backend:
          command: gunicorn --workers \(gunicornWorkers) --graceful-timeout 5 app:app
          instances: \(instances)
          listen: 127.0.0.1:\(app.port)
          ready: {timeout: 30s}
          health: {path: /health}
          stop: {signal: SIGTERM, timeout: 6s}
        \(extra)
        """)
    }
}
