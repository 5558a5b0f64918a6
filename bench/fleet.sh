#!/usr/bin/env bash
# Push -> every host converged, across hosts made of network namespaces (a git server running sshd
# and N agent hosts polling at 1 h, notified by the post-receive hook), over 5 pushes; and the git
# server's SSH connections per polling pass and per notified push, and how soon a host whose link
# was down during a push catches up by polling (3 s) once it is back. Runs the fleet end-to-end test
# (Tests/EndToEndTests/FleetTests.swift) once per host count and prints a table.
# Usage: bench/fleet.sh [HOSTS...]   (default: 3 10). Needs root (ip netns), a built test target.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=${SCRATCH:-.build}
tests="$scratch/x86_64-unknown-linux-gnu/debug/slipwayPackageTests.xctest"
[ -x "$tests" ] || swift build --build-tests --scratch-path "$scratch"
printf '%-6s %-9s %-7s %-26s %-26s %-10s\n' hosts median_s max_s "ssh logins/poll pass (all)" "ssh logins/notified push" catchup_s
for n in "${@:-3 10}"; do
  for hosts in $n; do
    out=$(SLIPWAY_FLEET_HOSTS=$hosts timeout 900 "$tests" --testing-library swift-testing --filter FleetTests 2>&1) || { echo "$out" | tail -20; exit 1; }
    median=$(echo "$out" | sed -n 's/.*converged over 5 pushes: median \([0-9.]*\) s.*/\1/p')
    max=$(echo "$out" | sed -n 's/.*, max \([0-9.]*\) s.*/\1/p')
    poll=$(echo "$out" | sed -n 's/.*nothing new costs the git server \([0-9]*\) SSH.*/\1/p')
    pushes=$(echo "$out" | sed -n 's/.*: \([0-9]*\) SSH connections to the git server for 5 notified.*/\1/p')
    catchup=$(echo "$out" | sed -n 's/.*caught up by polling \([0-9.]*\) s after.*/\1/p')
    printf '%-6s %-9s %-7s %-26s %-26s %-10s\n' "$hosts" "$median" "$max" "$poll" "$(awk "BEGIN { printf \"%.1f\", $pushes / 5 }")" "$catchup"
  done
done
