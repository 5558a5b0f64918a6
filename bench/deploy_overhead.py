#!/usr/bin/env python3
"""Deploy overhead: Slipway vs the hand-written pipeline it replaces, side by side in one run.

    python3 bench/deploy_overhead.py [--files 5000] [--mb 20] [--runs 5] [--apps 20]

Builds slipway (release), makes a source repo of FILES files totalling MB megabytes, and measures:
  1. a cold first deploy and a one-file-change deploy, Slipway (`agent --once`, no build step, so
     only Slipway's own work is timed) vs `git archive | tar -x` into a temp dir + `rsync -a --delete`
     into a timestamped dir + `ln -sfn` + prune;
  2. the disk a one-file-change release adds;
  3. a no-change pass with APPS apps, and the agent's peak RSS.
Prints a table. Needs git and rsync (installed with apt when missing).
"""
import argparse, os, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw).stdout


def git(repo, *args):
    return subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=b@b.invalid", "-c", "commit.gpgsign=false", "-C", repo, *args],
                          check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True).stdout.strip()


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


RSS_PROBE = ("import resource, subprocess, sys, time\n"
             "t = time.perf_counter()\n"
             "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
             "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")


def peak_rss_kb(cmd):
    """Runs cmd under a fresh probe process, so ru_maxrss is that command's own peak (KiB)."""
    out = subprocess.run([sys.executable, "-c", RSS_PROBE, *cmd], check=True, stdout=subprocess.PIPE, text=True).stdout.split()
    return float(out[0]), int(out[1])


def disk_kb(*paths):
    """du's view: hardlinked inodes are counted once, in the first path that has them."""
    out = sh("du -sk " + " ".join(paths))
    return [int(line.split()[0]) for line in out.splitlines()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--mb", type=int, default=20)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--apps", type=int, default=20)
    args = ap.parse_args()

    if shutil.which("rsync") is None:
        sh("apt-get install -y -qq rsync >/dev/null")
    print("building slipway (release)…", file=sys.stderr)
    sh("swift build -c release", cwd=ROOT)
    slipway = os.path.join(sh("swift build -c release --show-bin-path", cwd=ROOT).strip(), "slipway")

    work = tempfile.mkdtemp(prefix="slipway-bench-")
    src = os.path.join(work, "src")
    os.makedirs(src)
    git(src, "init", "-q", "-b", "main")
    size = args.mb * 1024 * 1024 // args.files
    for i in range(args.files):
        d = os.path.join(src, f"pkg{i // 100:03d}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"file{i:05d}.js"), "wb") as f:
            f.write(os.urandom(size // 2).hex().encode()[:size])
    git(src, "add", "-A")
    git(src, "commit", "-q", "-m", "tree")

    def change_one_file(n):
        with open(os.path.join(src, "pkg000", "file00000.js"), "w") as f:
            f.write(f"change {n}\n")
        git(src, "commit", "-q", "-am", f"change {n}")

    # --- Slipway ---
    manifests = os.path.join(work, "manifests")
    os.makedirs(os.path.join(manifests, "manifests"))
    git(manifests, "init", "-q", "-b", "main")
    with open(os.path.join(manifests, "manifests", "app.yaml"), "w") as f:
        f.write(f"app: app\nsource: {{repo: {src}, ref: main}}\nreleases: {{keep: 5}}\nbackend: {{dir: .}}\n")
    git(manifests, "add", "-A")
    git(manifests, "commit", "-q", "-m", "m")
    config = os.path.join(work, "agent.yaml")
    with open(config, "w") as f:
        f.write(f"manifests: {{repo: {manifests}}}\napps_root: {work}/apps\nstate_dir: {work}/state\ngit: {{local_roots: [{work}]}}\n")
    once = [slipway, "agent", "--once", "--config", config]

    slipway_cold = timed(lambda: subprocess.run(once, check=True, stderr=subprocess.DEVNULL))
    slipway_change = []
    for n in range(args.runs):
        change_one_file(n)
        slipway_change.append(timed(lambda: subprocess.run(once, check=True, stderr=subprocess.DEVNULL)))
    releases = sorted(os.listdir(f"{work}/apps/app/releases"))
    prev, new = (f"{work}/apps/app/releases/{r}" for r in releases[-2:])
    slipway_disk_full, slipway_disk_delta = disk_kb(prev, new)

    # --- the hand-written pipeline ---
    pipe_root = os.path.join(work, "pipeline")
    os.makedirs(os.path.join(pipe_root, "releases"))
    counter = [0]

    def pipeline():
        counter[0] += 1
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime()) + f"-{counter[0]:03d}"
        tmp = tempfile.mkdtemp(dir=work)
        sh(f"git -C {src} archive HEAD | tar -x -C {tmp}")
        sh(f"rsync -a --delete {tmp}/ {pipe_root}/releases/{stamp}/")
        sh(f"ln -sfn releases/{stamp} {pipe_root}/current")
        sh(f"cd {pipe_root}/releases && ls | head -n -5 | xargs -r rm -rf")
        shutil.rmtree(tmp)

    pipe_cold = timed(pipeline)
    pipe_change = []
    for n in range(args.runs):
        change_one_file(100 + n)
        pipe_change.append(timed(pipeline))
    prel = sorted(os.listdir(f"{pipe_root}/releases"))
    pipe_disk_full, pipe_disk_delta = disk_kb(*(f"{pipe_root}/releases/{r}" for r in prel[-2:]))

    # --- a no-change pass with many apps, and peak RSS ---
    sha = git(src, "rev-parse", "HEAD")
    for i in range(args.apps):
        with open(os.path.join(manifests, "manifests", f"app{i:02d}.yaml"), "w") as f:
            f.write(f"app: app{i:02d}\nsource: {{repo: {src}, ref: {sha}}}\nbackend: {{dir: .}}\n")
    os.remove(os.path.join(manifests, "manifests", "app.yaml"))
    git(manifests, "add", "-A")
    git(manifests, "commit", "-q", "-m", "many apps")
    many_first, rss_deploy = peak_rss_kb(once)
    noop = []
    rss_noop = 0
    for _ in range(args.runs):
        t, rss = peak_rss_kb(once)
        noop.append(t)
        rss_noop = max(rss_noop, rss)

    med = statistics.median
    rows = [
        ("first deploy, cold (s)", slipway_cold, pipe_cold),
        ("one-file-change deploy, median (s)", med(slipway_change), med(pipe_change)),
        ("disk added by that release (KiB)", slipway_disk_delta, pipe_disk_delta),
    ]
    print(f"\nDeploy overhead, {args.files} files / {args.mb} MB, {args.runs} runs each, no build step")
    print(f"{'measure':40} {'slipway':>12} {'pipeline':>12} {'pipeline/slipway':>17}")
    for name, a, b in rows:
        print(f"{name:40} {a:12.3f} {b:12.3f} {b / a if a else float('inf'):16.1f}x")
    print(f"{'release size, full (KiB)':40} {slipway_disk_full:12d} {pipe_disk_full:12d}")
    print(f"\nNo-change pass with {args.apps} apps (all pinned to one commit)")
    print(f"{'first pass deploying all (s)':40} {many_first:12.3f}")
    print(f"{'no-change pass, median (s)':40} {med(noop):12.3f}")
    print(f"{'agent peak RSS, deploying (MiB)':40} {rss_deploy / 1024:12.1f}")
    print(f"{'agent peak RSS, no-change pass (MiB)':40} {rss_noop / 1024:12.1f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
