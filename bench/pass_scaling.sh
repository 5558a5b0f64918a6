#!/usr/bin/env bash
# Pass time against the number of manifests, and parse time against a manifest's size.
#
#   bench/pass_scaling.sh [SLIPWAY_BINARY] [BASELINE_BINARY]
#
# For 250, 1,000 and 5,000 manifests that name another host (so the pass has nothing to build),
# times `slipway agent --once` twice: the first pass (every app new to the state) and a second
# with nothing to do; then `slipway validate` of one manifest of 10 KB, 100 KB and 1 MiB of
# unknown keys. With a BASELINE_BINARY (e.g. a build of an older commit) both run side by side on
# the same repos, and the table shows the ratio. Medians of 3 runs. Everything in a temp dir.
set -euo pipefail
bin=${1:-.build/release/slipway}
base=${2:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

make_repos() { # N DIR
  local n=$1 d=$2
  mkdir -p "$d/src" "$d/man/manifests"
  git -C "$d/src" init -q -b main; echo x > "$d/src/index.html"
  git -C "$d/src" add -A; git -C "$d/src" -c user.name=b -c user.email=b@b commit -qm v1
  local sha; sha=$(git -C "$d/src" rev-parse HEAD)
  for i in $(seq 1 "$n"); do
    printf 'app: app%s\nsource: {repo: %s, ref: %s}\nhosts: [web-9]\nfrontend: {build: "true", output: dist}\n' "$i" "$d/src" "$sha" > "$d/man/manifests/app$i.yaml"
  done
  git -C "$d/man" init -q -b main; git -C "$d/man" add -A; git -C "$d/man" -c user.name=b -c user.email=b@b commit -qm m
}

config() { # DIR STATE
  printf 'host: web-1\nmanifests: {repo: %s/man}\napps_root: %s/apps\nstate_dir: %s\napps_user: nobody\nlisten: off\ngit: {local_roots: [%s]}\n' "$1" "$2" "$2" "$1" > "$2.yaml"
  echo "$2.yaml"
}

seconds() { # command…: wall seconds of one run
  local start end
  start=$(date +%s%N); "$@" >/dev/null 2>&1 || true; end=$(date +%s%N)
  echo "scale=3; ($end - $start) / 1000000000" | bc
}

median3() { printf '%s\n' "$@" | sort -n | sed -n 2p; }

pass_pair() { # BINARY DIR TAG: "first second" medians
  local b=$1 d=$2 tag=$3 firsts=() seconds_=()
  for r in 1 2 3; do
    local state="$d/state-$tag-$r"; local cfg; cfg=$(config "$d" "$state")
    firsts+=("$(seconds "$b" agent --once --config "$cfg")")
    seconds_+=("$(seconds "$b" agent --once --config "$cfg")")
    rm -rf "$state" "$d/apps"
  done
  echo "$(median3 "${firsts[@]}") $(median3 "${seconds_[@]}")"
}

printf '%-28s %10s %10s %8s\n' "measure" "slipway" "baseline" "ratio"
for n in 250 1000 5000; do
  d="$work/n$n"; make_repos "$n" "$d"
  read -r first second <<<"$(pass_pair "$bin" "$d" new)"
  if [ -n "$base" ]; then read -r bfirst bsecond <<<"$(pass_pair "$base" "$d" old)"; else bfirst=-; bsecond=-; fi
  for row in "first pass, $n manifests:$first:$bfirst" "no-change pass, $n:$second:$bsecond"; do
    IFS=: read -r what a b <<<"$row"
    ratio=-; [ "$b" != - ] && ratio=$(echo "scale=2; $b / $a" | bc)
    printf '%-28s %9ss %9s%s %8s\n' "$what" "$a" "$b" "$([ "$b" = - ] || echo s)" "$ratio"
  done
done
for size in 10240 102400 1048000; do
  f="$work/m$size.yaml"
  /usr/bin/python3 -c '
import sys
size, out = int(sys.argv[1]), ["app: big\n"]
total, i = len(out[0]), 0
while True:
    line = "k%d: value\n" % i
    if total + len(line) > size: break
    out.append(line); total += len(line); i += 1
open(sys.argv[2], "w").write("".join(out))' "$size" "$f"
  runs=(); for r in 1 2 3; do runs+=("$(seconds "$bin" validate "$f")"); done; a=$(median3 "${runs[@]}")
  b=-; if [ -n "$base" ]; then runs=(); for r in 1 2 3; do runs+=("$(seconds "$base" validate "$f")"); done; b=$(median3 "${runs[@]}"); fi
  ratio=-; [ "$b" != - ] && ratio=$(echo "scale=2; $b / $a" | bc)
  printf '%-28s %9ss %9s%s %8s\n' "validate, $((size / 1024)) KB manifest" "$a" "$b" "$([ "$b" = - ] || echo s)" "$ratio"
done
