#!/usr/bin/python3
"""A tiny worker for the end-to-end tests that need many fast rollouts: serves every socket it
is given (fd 3, and fd 4 when LISTEN_FDS=2) with X-Release, sends READY=1 on NOTIFY_SOCKET,
stops on SIGTERM. Starts in tens of milliseconds."""
import http.server, os, signal, socket, socketserver, sys, threading

release = os.environ.get("SLIPWAY_RELEASE", "dev")

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("%s %d\n" % (release, os.getpid())).encode()
        self.send_response(200)
        self.send_header("X-Release", release)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args): pass

class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    def __init__(self, fd):
        http.server.HTTPServer.__init__(self, ("127.0.0.1", 0), Handler, bind_and_activate=False)
        self.socket = socket.socket(fileno=fd)
        # Left non-blocking: the shared socket's flags belong to every worker holding it.

servers = [Server(3 + i) for i in range(int(os.environ.get("LISTEN_FDS", "0")))]
for s in servers:
    threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
target = os.environ.get("NOTIFY_SOCKET")
if target:
    n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    n.sendto(b"READY=1", "\0" + target[1:] if target.startswith("@") else target)
stop.wait()
sys.exit(0)
