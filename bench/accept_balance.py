#!/usr/bin/env python3
"""One shared listening socket (what Slipway gives an app's workers) against a socket per worker.

    python3 bench/accept_balance.py [--rounds 5] [--workers 4] [--clients 4] [--seconds 6]

Why a rollout does not hold a new worker out of rotation while it warms up (see
`bench/fresh_worker.py`): that would need a socket per worker in an `SO_REUSEPORT` group, where the
kernel hands each new connection to a socket by its hash, busy worker or not; on one shared socket a
worker only takes a connection when it is free to accept it. WORKERS processes of one Express app
(`app.listen({fd: 3})`, Debian's node-express) serve a loopback port two ways, side by side in each
round: all of them on one socket, and each on its own `SO_REUSEPORT` socket of the same port. Two
loads on each: CLIENTS client processes (half keep-alive, half a new connection per request) on a
cheap route; and the same with one more client asking, on new connections, for a route that keeps
its worker busy for 20 ms. Prints p50/p99 of the cheap requests, medians over the rounds.
"""
import argparse, multiprocessing as mp, os, shutil, socket, statistics, subprocess, sys, tempfile, time

from http_client import percentile_ms, request_until  # bench/http_client.py

APP = """const express = require("express");
const app = express();
app.get("/", (req, res) => res.json({ hello: "world", pid: process.pid }));
app.get("/busy", (req, res) => { const end = Date.now() + 20; while (Date.now() < end); res.json({ busy: true }); });
app.listen({ fd: 3 }, () => console.log("listening"));
"""
PORT = 20531


def client(keepalive, end_at, results, path):
    results.put([latency for (_, latency, _) in request_until(lambda: end_at, lambda now: PORT, path, keepalive)])


def load(clients, seconds, busy):
    results, busy_results = mp.Queue(), mp.Queue()
    end = time.time() + seconds
    pool = [mp.Process(target=client, args=(i % 2 == 0, end, results, "/")) for i in range(clients)]
    extra = [mp.Process(target=client, args=(False, end, busy_results, "/busy"))] if busy else []
    for p in pool + extra: p.start()
    latencies = [l for _ in pool for l in results.get(timeout=seconds + 60)]
    for _ in extra: busy_results.get(timeout=seconds + 60)
    for p in pool + extra: p.join(timeout=10)
    return latencies


def listener(reuseport):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport: s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("127.0.0.1", PORT))
    s.listen(128)
    return s


def one_round(directory, layout, args):
    sockets = [listener(True) for _ in range(args.workers)] if layout == "per-worker" else [listener(False)] * args.workers
    env = dict(os.environ, NODE_PATH="/usr/share/nodejs", NODE_ENV="production")
    workers = []
    try:
        for s in sockets:
            fd = s.fileno()
            worker = subprocess.Popen(["node", "app.js"], cwd=directory, env=env, stdout=subprocess.PIPE,
                                      pass_fds=tuple({fd, 3}), preexec_fn=lambda fd=fd: os.dup2(fd, 3))
            workers.append(worker)
            worker.stdout.readline()
        load(args.clients, 3, False)  # every worker warm
        result = {}
        for busy in (False, True):
            latencies = load(args.clients, args.seconds, busy)
            result[busy] = (percentile_ms(latencies, 0.5), percentile_ms(latencies, 0.99))
        return result
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
        for s in set(sockets): s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=6)
    args = ap.parse_args()
    if not shutil.which("node") or not os.path.isdir("/usr/share/nodejs/express"):
        sys.exit("needs node and Debian's node-express (apt-get install nodejs node-express)")
    directory = tempfile.mkdtemp(prefix="slipway-bench-accept-")
    layouts = ["shared socket", "per-worker"]
    rows = {layout: [] for layout in layouts}
    try:
        with open(os.path.join(directory, "app.js"), "w") as f:
            f.write(APP)
        for r in range(args.rounds):
            for layout in layouts if r % 2 == 0 else layouts[::-1]:
                rows[layout].append(one_round(directory, layout, args))
                time.sleep(0.5)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print(f"\n{args.workers} Express workers, {args.clients} clients (half keep-alive) on a cheap route: p50/p99 ms of "
          f"those requests, medians of {args.rounds} rounds, {os.cpu_count()} cores")
    print(f"{'layout':<30} {'p50':>6} {'p99':>7}   {'+ a client on a 20 ms route: p50':>33} {'p99':>7}")
    for layout in layouts:
        name = "one shared socket" if layout == "shared socket" else "a SO_REUSEPORT socket each"
        med = lambda busy, i: statistics.median(r[busy][i] for r in rows[layout])
        print(f"{name:<30} {med(False, 0):>6.2f} {med(False, 1):>7.2f}   {med(True, 0):>33.2f} {med(True, 1):>7.2f}")


if __name__ == "__main__":
    main()
