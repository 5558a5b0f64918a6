#!/usr/bin/env python3
"""How slow a fresh Node process is for its first seconds, and what a warm-up or a V8 flag does to it.

    python3 bench/fresh_worker.py [--rounds 3] [--clients 4] [--variants plain,warmup-keepalive,...]

Where `bench/rolling_reload.py`'s excess over its steady state comes from, measured without
Slipway: one Express app (written as Express's docs write it, `app.listen(port)`; Debian's
node-express) runs as a warm process that CLIENTS client processes (half keep-alive, half a new
connection per request; processes, not threads, so no client waits for another's GIL) have loaded
for 5 s. Then a fresh process of the same app starts, the variant's warm-up runs on it, and the
clients move to it. Per variant, the medians over the rounds (variants rotated in each round) of
p99 on the warm process in the 3 s before the fresh one started ("warm") and while the fresh one
started and warmed up, until the clients moved ("meanwhile": what a warm-up costs the process
serving), and on the fresh one in the buckets after the move:
  - plain: nothing before the clients move;
  - warmup-keepalive: 5,000 requests on one keep-alive connection first;
  - warmup-mixed: 4,000 requests over 4 connections, half of them new per request, first;
  - always-sparkplug, min-semi-space-16, no-lazy-feedback: the fresh process started with that
    V8 flag (baseline code at once; a young generation that starts at its full 16 MB; type
    feedback allocated at once).
Prints one table. Needs node and /usr/share/nodejs/express.
"""
import argparse, http.client, multiprocessing as mp, os, shutil, statistics, subprocess, sys, tempfile, threading, time

from http_client import percentile_ms, request_until  # bench/http_client.py

APP = """const express = require("express");
const app = express();
const port = Number(process.env.PORT);
app.get("/", (req, res) => res.json({ hello: "world", pid: process.pid }));
app.listen(port, "127.0.0.1", () => console.log(`Example app listening on port ${port}`));
"""
FLAGS = {"always-sparkplug": ["--always-sparkplug"], "min-semi-space-16": ["--min-semi-space-size=16"],
         "no-lazy-feedback": ["--no-lazy-feedback-allocation"]}
VARIANTS = ["plain", "warmup-keepalive", "warmup-mixed", *FLAGS]
WARM_PORT, FRESH_PORT = 20511, 20512
BUCKETS = [(0, 0.5), (0.5, 1), (1, 2), (2, 4)]


def start(directory, port, flags=()):
    env = dict(os.environ, NODE_PATH="/usr/share/nodejs", NODE_ENV="production", PORT=str(port))
    process = subprocess.Popen(["node", *flags, "app.js"], cwd=directory, env=env, stdout=subprocess.PIPE)
    process.stdout.readline()  # "Example app listening"
    return process


def client(keepalive, switch_at, end_at, results):
    """Requests the warm process until `switch_at`, then the fresh one until `end_at`."""
    port_now = lambda now: FRESH_PORT if now >= switch_at.value else WARM_PORT
    results.put(request_until(lambda: end_at.value, port_now, "/", keepalive))


def warm_up(port, requests, connections):
    def one(keepalive, count):
        conn = None
        for _ in range(count):
            if conn is None: conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/")
            conn.getresponse().read()
            if not keepalive:
                conn.close()
                conn = None
    threads = [threading.Thread(target=one, args=(connections == 1 or i % 2 == 0, requests // connections)) for i in range(connections)]
    for t in threads: t.start()
    for t in threads: t.join()


def p99(latencies):
    return percentile_ms(latencies, 0.99)


def one_round(directory, variant, clients):
    warm = start(directory, WARM_PORT)
    fresh = None
    switch_at, end_at = mp.Value("d", time.time() + 3600), mp.Value("d", time.time() + 3600)
    results = mp.Queue()
    pool = [mp.Process(target=client, args=(i % 2 == 0, switch_at, end_at, results)) for i in range(clients)]
    try:
        for p in pool: p.start()
        time.sleep(5)
        started = time.time()
        fresh = start(directory, FRESH_PORT, FLAGS.get(variant, []))
        if variant == "warmup-keepalive": warm_up(FRESH_PORT, 5000, 1)
        if variant == "warmup-mixed": warm_up(FRESH_PORT, 4000, 4)
        moved = time.time()
        switch_at.value, end_at.value = moved, moved + BUCKETS[-1][1]
        records = [r for _ in pool for r in results.get(timeout=60)]
        for p in pool: p.join(timeout=10)
    finally:
        for p in pool:
            if p.is_alive(): p.kill()
        for process in (warm, fresh):
            if process:
                process.kill()
                process.wait()
    row = [p99([l for (t, l, port) in records if port == WARM_PORT and started - 3 <= t < started]),
           p99([l for (t, l, port) in records if port == WARM_PORT and started <= t < moved])]
    for low, high in BUCKETS:
        row.append(p99([l for (t, l, port) in records if port == FRESH_PORT and moved + low <= t < moved + high]))
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    args = ap.parse_args()
    variants = args.variants.split(",")
    if unknown := [v for v in variants if v not in VARIANTS]:
        sys.exit(f"unknown variant {unknown[0]}: one of {', '.join(VARIANTS)}")
    if not shutil.which("node") or not os.path.isdir("/usr/share/nodejs/express"):
        sys.exit("needs node and Debian's node-express (apt-get install nodejs node-express)")
    directory = tempfile.mkdtemp(prefix="slipway-bench-fresh-")
    try:
        with open(os.path.join(directory, "app.js"), "w") as f:
            f.write(APP)
        rows = {v: [] for v in variants}
        for r in range(args.rounds):
            for v in variants[r % len(variants):] + variants[:r % len(variants)]:
                rows[v].append(one_round(directory, v, args.clients))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print(f"\nA fresh Node process (Express) taking over {args.clients} clients (half keep-alive) from a warm one: "
          f"p99 ms, medians of {args.rounds} rounds, {os.cpu_count()} cores")
    heads = [f"{low}-{high} s" for low, high in BUCKETS]
    print(f"{'variant':<20} {'warm':>7} {'meanwhile':>10} " + " ".join(f"{h:>8}" for h in heads) + f" {'first s / warm':>15}")
    for v in variants:
        medians = [statistics.median(column) for column in zip(*rows[v])]
        first = max(medians[2], medians[3])
        print(f"{v:<20} {medians[0]:>7.2f} {medians[1]:>10.2f} " + " ".join(f"{m:>8.2f}" for m in medians[2:]) + f" {first / medians[0]:>14.2f}x")


if __name__ == "__main__":
    main()
