#!/usr/bin/env python3
"""Rolling reload vs a naive stop-then-start restart of the same app, under the same load.

    python3 bench/rolling_reload.py [--reloads 10] [--instances 4] [--threads 4] [--steady 5]

Builds slipway (release) and deploys examples/platform (Node + Debian's node-express) with a
running agent, `instances` workers on a loopback port. Then, with the load generator of the
end-to-end tests (half keep-alive, half fresh connections) running throughout, measures:
  1. steady state: no reload, `steady` seconds;
  2. Slipway: `slipway reload platform`, `reloads` times;
  3. naive: the same server.js as one process on its own port, restarted `reloads` times the way
     a hand-written script does it (SIGINT, wait for the exit, start it again, wait for the port);
and prints failed requests, p50/p99 latency, and the time of one rolling reload of all workers
beyond the app's own start time (from the worker log: spawn to READY=1, per worker).
"""
import argparse, json, os, re, shutil, socket, subprocess, sys, tempfile, time
from datetime import datetime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOADGEN = os.path.join(ROOT, "Tests/EndToEndTests/Support/loadgen.py")


def git(repo, *args):
    subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=b@b.invalid", "-c", "commit.gpgsign=false", "-C", repo, *args],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"GET /api/health HTTP/1.0\r\n\r\n")
                if b" 200 " in s.recv(100):
                    return True
        except OSError:
            pass
        time.sleep(0.02)
    return False


class Load:
    def __init__(self, port, threads, scratch):
        self.stop_file = os.path.join(scratch, f"stop-{port}-{time.time()}")
        self.proc = subprocess.Popen([sys.executable, LOADGEN, "127.0.0.1", str(port), "/api/hello", str(threads), self.stop_file, "600"],
                                     stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)

    def finish(self):
        open(self.stop_file, "w").close()
        out, _ = self.proc.communicate(timeout=60)
        return json.loads(out)


def stamp(line):
    return datetime.strptime(line[:23], "%Y-%m-%dT%H:%M:%S.%f").timestamp()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reloads", type=int, default=10)
    ap.add_argument("--instances", type=int, default=4)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--steady", type=float, default=5)
    args = ap.parse_args()

    subprocess.run([os.path.join(ROOT, "scripts/install-deps")], check=True)
    print("building slipway (release)…", file=sys.stderr)
    subprocess.run(["swift", "build", "-c", "release"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    slipway = os.path.join(subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                                          stdout=subprocess.PIPE, text=True).stdout.strip(), "slipway")

    work = tempfile.mkdtemp(prefix="slipway-bench-")
    os.chmod(work, 0o755)
    scratch = os.path.join(work, "scratch")
    os.makedirs(scratch)
    src = os.path.join(work, "platform")
    shutil.copytree(os.path.join(ROOT, "examples/platform"), src)
    git(src, "init", "-q", "-b", "main")
    git(src, "add", "-A")
    git(src, "commit", "-q", "-m", "v1")
    port = free_port()
    manifests = os.path.join(work, "manifests")
    os.makedirs(os.path.join(manifests, "manifests"))
    with open(os.path.join(ROOT, "examples/platform/manifest.yaml.in")) as f:
        text = f.read().replace("@SOURCE_REPO@", src).replace("@PORT@", str(port)).replace("instances: 2", f"instances: {args.instances}")
    with open(os.path.join(manifests, "manifests/platform.yaml"), "w") as f:
        f.write(text)
    git(manifests, "init", "-q", "-b", "main")
    git(manifests, "add", "-A")
    git(manifests, "commit", "-q", "-m", "m")
    config = os.path.join(work, "agent.yaml")
    with open(config, "w") as f:
        f.write(f"host: bench\nmanifests: {{repo: {manifests}}}\napps_root: {work}/apps\nstate_dir: {work}/state\ngit: {{local_roots: [{work}]}}\n"
                f"poll_interval: 1h\nlisten: 127.0.0.1:0\n" + ("apps_user: nobody\n" if os.geteuid() == 0 else ""))

    agent = subprocess.Popen([slipway, "agent", "--config", config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    naive = None
    try:
        assert wait_port(port, 60), "the app did not come up"
        time.sleep(1)
        rows = []

        load = Load(port, args.threads, scratch)
        time.sleep(args.steady)
        rows.append(("steady state (no reload)", load.finish(), None))

        log_path = f"{work}/state/logs/platform/workers.log"
        reload_times, start_times = [], []
        load = Load(port, args.threads, scratch)
        for _ in range(args.reloads):
            offset = os.path.getsize(log_path)
            t = time.perf_counter()
            subprocess.run([slipway, "reload", "platform", "--config", config], check=True, stdout=subprocess.DEVNULL)
            reload_times.append(time.perf_counter() - t)
            with open(log_path) as f:
                f.seek(offset)
                lines = f.read().splitlines()
            started = {m.group(1): stamp(l) for l in lines if (m := re.search(r"\[(w\d+ \d+)\] slipway: started", l))}
            ready = {m.group(1): stamp(l) for l in lines if (m := re.search(r"\[(w\d+ \d+)\] slipway: ready", l))}
            start_times.append(sum(ready[k] - started[k] for k in ready if k in started))
            time.sleep(0.5)
        rows.append((f"Slipway rolling reload x{args.reloads}, {args.instances} workers", load.finish(), None))

        # The naive way: one process, stopped and started again.
        nport = free_port()
        env = dict(os.environ, NODE_PATH="/usr/share/nodejs", PORT=str(nport), SLIPWAY_RELEASE="naive")
        env.pop("LISTEN_FDS", None)
        env.pop("NOTIFY_SOCKET", None)
        server = os.path.join(src, "server/server.js")
        naive = subprocess.Popen(["node", server], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_port(nport), "the naive server did not come up"
        load = Load(nport, args.threads, scratch)
        naive_times = []
        for _ in range(args.reloads):
            t = time.perf_counter()
            naive.send_signal(2)
            naive.wait(timeout=30)
            naive = subprocess.Popen(["node", server], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_port(nport)
            naive_times.append(time.perf_counter() - t)
            time.sleep(0.5)
        rows.append((f"naive stop-then-start x{args.reloads}, 1 process", load.finish(), None))

        print(f"\n{'run':<44} {'requests':>9} {'failed':>7} {'fail %':>7} {'ka retries':>10} {'p50 ms':>7} {'p99 ms':>8} {'max ms':>8}")
        for name, s, _ in rows:
            pct = 100.0 * s["failed"] / max(1, s["requests"])
            print(f"{name:<44} {s['requests']:>9} {s['failed']:>7} {pct:>6.2f}% {s['retried_keepalive']:>10} {s['p50_ms']:>7} {s['p99_ms']:>8} {s['max_ms']:>8}")
        med = sorted(reload_times)[len(reload_times) // 2]
        med_start = sorted(start_times)[len(start_times) // 2]
        print(f"\none rolling reload of {args.instances} workers (slipway reload, wall): median {med * 1000:.0f} ms, "
              f"of which the app's own start (spawn to READY=1, summed over the workers): {med_start * 1000:.0f} ms, "
              f"Slipway's overhead: {(med - med_start) * 1000:.0f} ms ({(med - med_start) * 1000 / args.instances:.0f} ms per worker)")
        print(f"one naive restart (stop, start, port answers): median {sorted(naive_times)[len(naive_times) // 2] * 1000:.0f} ms")
        for name, s, _ in rows:
            if s["errors"]:
                print(f"  first errors, {name}: {s['errors'][:3]}")
    finally:
        if naive:
            naive.kill()
        agent.terminate()
        agent.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
