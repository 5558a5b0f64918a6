"""The client loop of the benches that measure Node processes without Slipway (fresh_worker.py,
accept_balance.py): one client process's requests, on one keep-alive connection or a new
connection each, until a deadline, each answer's latency recorded."""
import http.client, time


def request_until(end_at, port_now, path, keepalive):
    """(wall time sent, seconds to the whole answer, port) of every answered GET of `path` until
    `end_at()` (epoch seconds) has passed; `port_now(now)` names the loopback port of each request
    (a new one drops the connection). A request that failed is not recorded; the next opens anew."""
    records, conn, current = [], None, None
    while (now := time.time()) < end_at():
        port = port_now(now)
        if port != current:
            if conn: conn.close()
            conn, current = None, port
        started = time.monotonic()
        try:
            if conn is None: conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", path)
            conn.getresponse().read()
            records.append((now, time.monotonic() - started, port))
            if not keepalive:
                conn.close()
                conn = None
        except OSError:
            if conn: conn.close()
            conn = None
    return records


def percentile_ms(latencies, fraction):
    """The `fraction` percentile (0.99 for p99) of `latencies` in seconds, in milliseconds; nan for none."""
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] * 1000 if ordered else float("nan")
