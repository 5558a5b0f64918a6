#!/usr/bin/env python3
"""A bounded HTTP load generator for the end-to-end tests and bench/.

Half the threads reuse one keep-alive connection each, half open a fresh connection per
request. It runs until STOP_FILE exists or MAX_SECONDS pass, then prints one JSON summary:
requests, failures (with the first few errors), which X-Release answered how often and when it
first and last answered (wall clock), latency percentiles. A request that failed on a reused keep-alive connection before any byte of a
response arrived is retried once on a new connection, as browsers, Go and nginx do for
idempotent requests; such retries are counted apart and are not failures.

An optional MODE (7th argument) changes the clients: "mixed" (the default, as above),
"keepalive-retry" (every thread keeps its connection and retries as above) or
"keepalive-noretry" (every thread keeps its connection and never retries, like wrk).
"""
import http.client, json, os, sys, threading, time

host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
threads, stop_file, max_seconds = int(sys.argv[4]), sys.argv[5], float(sys.argv[6])
mode = sys.argv[7] if len(sys.argv) > 7 else "mixed"
lock = threading.Lock()
stats = {"requests": 0, "failed": 0, "errors": [], "releases": {}, "retried_keepalive": 0, "latencies": [],
         "first_seen": {}, "last_seen": {}}

def record(ok, release=None, error=None, latency=None, retried=False):
    with lock:
        stats["requests"] += 1
        if retried: stats["retried_keepalive"] += 1
        if ok:
            stats["releases"][release] = stats["releases"].get(release, 0) + 1
            # Wall-clock times (the response's end) a release first and last answered, so a test
            # can tell whether a release answered after a moment it names.
            now = time.time()
            stats["first_seen"].setdefault(release, now)
            stats["last_seen"][release] = now
            stats["latencies"].append(latency)
        else:
            stats["failed"] += 1
            if len(stats["errors"]) < 10: stats["errors"].append(error)

def one(conn):
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    return response.status, response.getheader("X-Release"), response.getheader("Connection", "")

def worker(keepalive):
    deadline = time.monotonic() + max_seconds
    conn = None
    while not os.path.exists(stop_file) and time.monotonic() < deadline:
        started = time.monotonic()
        reused = conn is not None
        retried = False
        try:
            if conn is None: conn = http.client.HTTPConnection(host, port, timeout=10)
            try:
                status, release, connection = one(conn)
            except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected) as e:
                if not reused or mode == "keepalive-noretry": raise
                # The server closed an idle keep-alive connection as we sent: retry once, fresh.
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=10)
                retried = True
                status, release, connection = one(conn)
            latency = time.monotonic() - started
            if status == 200: record(True, release, latency=latency, retried=retried)
            else: record(False, error=f"HTTP {status} from {release}", retried=retried)
            if not keepalive or connection.lower() == "close":
                conn.close(); conn = None
        except Exception as e:
            record(False, error=f"{type(e).__name__}: {e}", retried=retried)
            if conn: conn.close()
            conn = None
            time.sleep(0.01)
    if conn: conn.close()

pool = [threading.Thread(target=worker, args=(mode != "mixed" or i % 2 == 0,)) for i in range(threads)]
for t in pool: t.start()
for t in pool: t.join()
lat = sorted(stats.pop("latencies"))
def pct(p): return round(lat[min(len(lat) - 1, int(len(lat) * p))] * 1000, 2) if lat else None
stats["p50_ms"], stats["p99_ms"], stats["max_ms"] = pct(0.50), pct(0.99), (round(lat[-1] * 1000, 2) if lat else None)
print(json.dumps(stats))
