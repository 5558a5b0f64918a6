#!/usr/bin/env python3
"""Push-to-pass latency (post-receive hook vs polling) and notify throughput under forged load.

    python3 bench/notify_latency.py [--pushes 5] [--poll 5] [--seconds 5] [--threads 8]

Builds slipway (release). A bare manifests repo with hooks/post-receive installed; an agent on
loopback. For each push, the latency is from `git push` returning to the agent logging the pass
that read the new commit ("manifests at <sha>"). Then THREADS clients hammer POST /v1/notify
with forged signatures for SECONDS while a valid notification is sent: forged requests per second
refused, and whether the valid one still started a pass. Prints a table.
"""
import argparse, hashlib, hmac, http.client, json, os, re, shutil, statistics, subprocess, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw).stdout.strip()


def git(repo, *args, env=None):
    return run("git", "-c", "user.name=b", "-c", "user.email=b@b.invalid", "-c", "commit.gpgsign=false", "-C", repo, *args, env=env)


def log_time(log, commit, after):
    """When the agent logged reading `commit` (seconds since the epoch), or None."""
    pattern = re.compile(r"^(\S+Z) .*manifests at " + commit[:12])
    for line in open(log, encoding="utf-8", errors="replace"):
        m = pattern.match(line)
        if m:
            t = time.mktime(time.strptime(m.group(1)[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone + float("0." + m.group(1)[20:23])
            if t >= after - 1:
                return t
    return None


def scenario(work, slipway, mode, pushes, poll):
    src, bare, clone = f"{work}/{mode}-src", f"{work}/{mode}-manifests.git", f"{work}/{mode}-clone"
    for d in (src, clone):
        os.makedirs(d)
        git(d, "init", "-q", "-b", "main")
    open(f"{src}/index.html", "w").write("x")
    git(src, "add", "-A"); git(src, "commit", "-q", "-m", "x")
    run("git", "init", "-q", "--bare", "-b", "main", bare)
    secret = f"{work}/{mode}.secret"
    open(secret, "w").write("bench-secret\n")
    os.makedirs(f"{clone}/manifests")
    sha = git(src, "rev-parse", "HEAD")
    state = f"{work}/{mode}-state"
    config = f"{work}/{mode}.yaml"
    open(config, "w").write(f"manifests: {{repo: {bare}}}\napps_root: {work}/{mode}-apps\ngit: {{local_roots: [{work}]}}\nstate_dir: {state}\n"
                            f"poll_interval: {poll if mode == 'polling' else 3600}s\nlisten: 127.0.0.1:0\n"
                            f"notify: {{secret_file: {secret}}}\n")
    def commit(n):
        open(f"{clone}/manifests/a.yaml", "w").write(f"app: a\nsource: {{repo: {src}, ref: {sha}}}\nreleases: {{keep: {n % 5 + 1}}}\nbackend: {{}}\n")
        git(clone, "add", "-A"); git(clone, "commit", "-q", "-m", f"n{n}")
        return git(clone, "rev-parse", "HEAD")
    commit(0)
    git(clone, "push", "-q", bare, "main")
    log = f"{work}/{mode}-agent.log"
    agent = subprocess.Popen([slipway, "agent", "--config", config], stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    try:
        for _ in range(200):
            if os.path.exists(f"{state}/http.addr"):
                break
            time.sleep(0.05)
        addr = open(f"{state}/http.addr").read().strip()
        if mode == "hook":
            shutil.copy(f"{ROOT}/hooks/post-receive", f"{bare}/hooks/post-receive")
            run("git", "-C", bare, "config", "--add", "slipway.agents", f"http://{addr}")
            run("git", "-C", bare, "config", "slipway.secretFile", secret)
        env = dict(os.environ, PATH=os.path.dirname(slipway) + ":" + os.environ["PATH"])
        latencies = []
        import random
        for n in range(1, pushes + 1):
            c = commit(n)
            # A random phase against the poll timer, as real pushes have.
            time.sleep(random.uniform(0, poll if mode == "polling" else 0.2))
            started = time.time()
            git(clone, "push", "-q", bare, "main", env=env)
            pushed = time.time()
            deadline = pushed + poll * 3 + 10
            seen = None
            while seen is None and time.time() < deadline:
                time.sleep(0.01)
                seen = log_time(log, c, started)
            latencies.append(((seen - started) if seen else float("nan"), pushed - started))
        return latencies, addr, secret, state, log, clone, bare, commit, env
    except Exception:
        agent.kill()
        raise
    finally:
        if mode == "polling":
            agent.kill()
        else:
            scenario.agent = agent


def forged_load(addr, seconds, threads, secret_bytes, state, log, clone, bare, commit, env, slipway):
    host, port = addr.rsplit(":", 1)
    counts = {"refused": 0, "other": 0}
    lock = threading.Lock()
    stop = time.time() + seconds
    body = json.dumps({"ref": "refs/heads/main", "before": "0" * 40, "after": "f" * 40, "pushed_at": "x"}).encode()
    def worker():
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        mine = {"refused": 0, "other": 0}
        while time.time() < stop:
            ts = str(int(time.time()))
            sig = "sha256=" + hmac.new(b"wrong-secret", ts.encode() + b"." + body, hashlib.sha256).hexdigest()
            try:
                conn.request("POST", "/v1/notify", body, {"X-Slipway-Timestamp": ts, "X-Slipway-Signature": sig, "Content-Type": "application/json"})
                r = conn.getresponse(); r.read()
                mine["refused" if r.status == 401 else "other"] += 1
            except Exception:
                conn.close(); conn = http.client.HTTPConnection(host, int(port), timeout=5)
                mine["other"] += 1
        with lock:
            for k in mine: counts[k] += mine[k]
    workers = [threading.Thread(target=worker) for _ in range(threads)]
    start = time.time()
    for w in workers: w.start()
    time.sleep(seconds / 2)
    c = commit(99)
    push_started = time.time()
    git(clone, "push", "-q", bare, "main", env=env)
    for w in workers: w.join()
    elapsed = time.time() - start
    seen = None
    deadline = time.time() + 10
    while seen is None and time.time() < deadline:
        seen = log_time(log, c, push_started); time.sleep(0.01)
    return counts, elapsed, (seen - push_started) if seen else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pushes", type=int, default=5)
    ap.add_argument("--poll", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--threads", type=int, default=8)
    args = ap.parse_args()
    run("swift", "build", "-c", "release", cwd=ROOT)
    slipway = os.path.join(run("swift", "build", "-c", "release", "--show-bin-path", cwd=ROOT), "slipway")
    work = tempfile.mkdtemp(prefix="slipway-notify-")
    try:
        hook, addr, secret, state, log, clone, bare, commit, env = scenario(work, slipway, "hook", args.pushes, args.poll)
        counts, elapsed, valid_latency = forged_load(addr, args.seconds, args.threads, None, state, log, clone, bare, commit, env, slipway)
        scenario.agent.kill()
        polling = scenario(work, slipway, "polling", args.pushes, args.poll)[0]
        med = statistics.median
        print(f"\nPush-to-pass latency, {args.pushes} pushes each: seconds from `git push` starting to the agent's pass")
        print(f"reading the commit (the hook runs inside the push, so its pass can start before the push returns)")
        print(f"{'trigger':34} {'median':>8} {'min':>8} {'max':>8} {'push took':>10}")
        for name, rows in ((f"post-receive hook (slipway notify)", hook), (f"polling every {args.poll}s", polling)):
            lat = [r[0] for r in rows]
            print(f"{name:34} {med(lat):8.3f} {min(lat):8.3f} {max(lat):8.3f} {med([r[1] for r in rows]):10.3f}")
        print(f"{'ratio polling/hook (median)':34} {med([r[0] for r in polling]) / med([r[0] for r in hook]):8.1f}x")
        print(f"\nForged notifications, {args.threads} keep-alive clients for {elapsed:.1f}s")
        print(f"{'refused (401) per second':34} {counts['refused'] / elapsed:8.0f}")
        print(f"{'other responses / errors':34} {counts['other']:8d}")
        print(f"{'valid push during the flood: push start to pass (s)':52} {valid_latency:8.3f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
