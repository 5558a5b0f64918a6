#!/usr/bin/env python3
"""Rolling reload vs gunicorn's HUP reload vs a naive stop-then-start, under the same load.

    python3 bench/rolling_reload.py [--rounds 5] [--reloads 3] [--instances 4] [--threads 4] [--steady 3]
                                    [--slipway BIN] [--baseline BIN] [--min-ready D] [--baseline-min-ready D]

Deploys examples/platform (Node + Debian's node-express) with a running agent, `instances`
workers on a loopback port (and, with BASELINE, a second agent of that binary deploying its own
copy on another port: e.g. a build without the low start priority). Then, ROUNDS times, with the
load generator of the end-to-end tests (half keep-alive, half fresh connections) running
throughout each segment, one segment after the other (so the shared machine's load falls on
every row alike):
  1. steady state: no reload, `steady` seconds;
  2. Slipway: `slipway reload platform`, `reloads` times [3. the same on the BASELINE agent];
  4. gunicorn (Debian's) with `instances` workers serving a tiny WSGI app: steady, then `reloads`
     HUPs (each waits until every worker was replaced);
  5. naive: the same server.js as one process on its own port, restarted `reloads` times the way
     a hand-written script does it (SIGINT, wait for the exit, start it again, wait for the port).
Prints one table: per row the medians over the rounds of p50/p99/max, the failures summed,
p99 against its own steady state (Slipway's rows against the Slipway steady row, gunicorn's HUP
against gunicorn steady), and how long one reload took (the command's wall time: a rollout whose
new workers start at a low priority on a saturated host takes longer, by design).

A reload row's p99 falls as its reloads get longer, whatever fills the time: the same slow
answers become a smaller share of more requests (a preload that slept 2.5 s before listening
scored as well as a warm-up; docs/performance.md). Read the reload time beside the p99, and
compare rows of equal reload time. --min-ready sets backend.ready.min_ready for the Slipway row
and --baseline-min-ready for the baseline row (the same binary as --baseline is allowed).
"""
import argparse, json, os, re, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

from app_accounts import app_accounts, remove_accounts  # bench/app_accounts.py

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOADGEN = os.path.join(ROOT, "Tests/EndToEndTests/Support/loadgen.py")

WSGI_APP = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Release", "gunicorn")])
    return [b"hello from gunicorn\\n"]
"""


def git(repo, *args):
    subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=b@b.invalid", "-c", "commit.gpgsign=false", "-C", repo, *args],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, seconds=30, path="/api/health"):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
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


class Deployed:
    """One agent (its own state, apps and port) running examples/platform."""

    def __init__(self, binary, work, tag, src, instances, min_ready=None):
        self.binary = binary
        root = os.path.join(work, tag)
        os.makedirs(root)
        os.chmod(root, 0o755)
        self.port = free_port()
        manifests = os.path.join(root, "manifests")
        os.makedirs(os.path.join(manifests, "manifests"))
        with open(os.path.join(ROOT, "examples/platform/manifest.yaml.in")) as f:
            text = f.read().replace("@SOURCE_REPO@", src).replace("@PORT@", str(self.port)).replace("instances: 2", f"instances: {instances}")
        if min_ready is not None:  # backend.ready.min_ready, over the example's own
            text = re.sub(r"\n    min_ready: .*", "", text).replace("\n  ready:\n", f"\n  ready:\n    min_ready: {min_ready}\n")
        with open(os.path.join(manifests, "manifests/platform.yaml"), "w") as f:
            f.write(text)
        git(manifests, "init", "-q", "-b", "main")
        git(manifests, "add", "-A")
        git(manifests, "commit", "-q", "-m", "m")
        self.config = os.path.join(root, "agent.yaml")
        with open(self.config, "w") as f:
            f.write(f"host: bench\nmanifests: {{repo: {manifests}}}\napps_root: {root}/apps\nstate_dir: {root}/state\n"
                    f"git: {{local_roots: [/]}}\npoll_interval: 1h\nlisten: 127.0.0.1:0\n" + ("apps_user: nobody\n" if os.geteuid() == 0 else ""))
        self.agent = subprocess.Popen([binary, "agent", "--config", self.config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_port(self.port, 120), f"{tag}: the app did not come up"

    def reload(self):
        subprocess.run([self.binary, "reload", "platform", "--config", self.config], check=True, stdout=subprocess.DEVNULL)

    def stop(self):
        self.agent.terminate()
        self.agent.wait(timeout=30)


class Gunicorn:
    def __init__(self, work, instances):
        folder = os.path.join(work, "gunicorn")
        os.makedirs(folder)
        with open(os.path.join(folder, "gapp.py"), "w") as f:
            f.write(WSGI_APP)
        self.port = free_port()
        self.proc = subprocess.Popen(["/usr/bin/gunicorn", "-w", str(instances), "-b", f"127.0.0.1:{self.port}", "--chdir", folder, "gapp:app"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_port(self.port, 30, "/"), "gunicorn did not come up"
        time.sleep(1)

    def workers(self):
        out = subprocess.run(["/usr/bin/pgrep", "-P", str(self.proc.pid)], stdout=subprocess.PIPE, text=True).stdout
        return set(out.split())

    def reload(self):
        """HUP, then wait until every worker is a new one (what a deploy waits for)."""
        before = self.workers()
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 30
        while time.time() < deadline:
            now = self.workers()
            if len(now) >= 1 and not (now & before) and len(now) == len(before):
                return
            time.sleep(0.02)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


class Naive:
    def __init__(self, src):
        self.port = free_port()
        self.env = dict(os.environ, NODE_PATH="/usr/share/nodejs", PORT=str(self.port), SLIPWAY_RELEASE="naive")
        self.env.pop("LISTEN_FDS", None)
        self.env.pop("NOTIFY_SOCKET", None)
        self.server = os.path.join(src, "server/server.js")
        self.proc = self.start()

    def start(self):
        proc = subprocess.Popen(["node", self.server], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_port(self.port), "the naive server did not come up"
        return proc

    def reload(self):
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=30)
        self.proc = self.start()

    def stop(self):
        self.proc.kill()
        self.proc.wait()



def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reloads", type=int, default=3)
    ap.add_argument("--instances", type=int, default=4)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--steady", type=float, default=3)
    ap.add_argument("--slipway", help="a slipway binary (default: build this checkout, release)")
    ap.add_argument("--baseline", help="another slipway binary run side by side (its own agent and port)")
    ap.add_argument("--min-ready", help="backend.ready.min_ready for the Slipway row (default: the example manifest's)")
    ap.add_argument("--baseline-min-ready", help="the same for the baseline row (e.g. 0s, with --baseline the same binary)")
    args = ap.parse_args()
    accounts = app_accounts()

    subprocess.run([os.path.join(ROOT, "scripts/install-deps")], check=True)
    slipway = args.slipway
    if not slipway:
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
    running = []
    try:
        slip = Deployed(slipway, work, "slipway", src, args.instances, args.min_ready)
        running.append(slip)
        base = None
        if args.baseline:
            base = Deployed(args.baseline, work, "baseline", src, args.instances, args.baseline_min_ready)
            running.append(base)
        guni = Gunicorn(work, args.instances)
        running.append(guni)
        naive = Naive(src)
        running.append(naive)
        time.sleep(1)

        def steady(port):
            load = Load(port, args.threads, scratch)
            time.sleep(args.steady)
            return load.finish()

        def reloading(port, reload):
            load = Load(port, args.threads, scratch)
            took = []
            for _ in range(args.reloads):
                started = time.perf_counter()
                reload()
                took.append(time.perf_counter() - started)
                time.sleep(0.5)
            result = load.finish()
            result["reload_s"] = statistics.median(took)
            return result

        segments = [("steady state (no reload)", lambda: steady(slip.port)),
                    (f"Slipway rolling reload x{args.reloads}, {args.instances} workers", lambda: reloading(slip.port, slip.reload))]
        if base:
            segments.append((f"baseline rolling reload x{args.reloads}", lambda: reloading(base.port, base.reload)))
        segments += [(f"gunicorn steady, {args.instances} workers", lambda: steady(guni.port)),
                     (f"gunicorn HUP reload x{args.reloads}", lambda: reloading(guni.port, guni.reload)),
                     (f"naive stop-then-start x{args.reloads}, 1 process", lambda: reloading(naive.port, naive.reload))]
        results = {name: [] for name, _ in segments}
        for _ in range(args.rounds):
            for name, segment in segments:
                results[name].append(segment())

        def med(name, key):
            values = [r[key] for r in results[name] if r[key] is not None]
            return statistics.median(values) if values else float("nan")

        steady_name, guni_steady = segments[0][0], f"gunicorn steady, {args.instances} workers"
        print(f"\nRolling reload under load ({args.threads} client threads, half keep-alive): medians over {args.rounds} rounds, "
              f"segments interleaved in each round, {os.cpu_count()} cores")
        print(f"{'row':<44} {'requests':>9} {'failed':>7} {'p50 ms':>7} {'p99 ms':>8} {'max ms':>8} {'p99/steady':>11} {'reload s':>9}")
        for name, _ in segments:
            reference = guni_steady if name.startswith("gunicorn") else steady_name
            requests = sum(r["requests"] for r in results[name])
            failed = sum(r["failed"] for r in results[name])
            ratio = med(name, "p99_ms") / med(reference, "p99_ms")
            took = [r["reload_s"] for r in results[name] if "reload_s" in r]
            reload_s = f"{statistics.median(took):>9.2f}" if took else f"{'-':>9}"
            print(f"{name:<44} {requests:>9} {failed:>7} {med(name, 'p50_ms'):>7.2f} {med(name, 'p99_ms'):>8.2f} {med(name, 'max_ms'):>8.2f} {ratio:>10.2f}x {reload_s}")
        for name, _ in segments:
            errors = [e for r in results[name] for e in r["errors"]]
            if errors:
                print(f"  first errors, {name}: {errors[:3]}")
    finally:
        for thing in reversed(running):
            try:
                thing.stop()
            except Exception as error:
                print(f"stopping {type(thing).__name__}: {error}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)
        remove_accounts(accounts)


if __name__ == "__main__":
    main()
