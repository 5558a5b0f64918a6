#!/bin/sh
# The race-free tree walks (SafeTree: directory fds, openat O_NOFOLLOW, fchown/fchmod on the fd)
# against the path walks they replaced, on a 5,000-file tree; prints a table. Run as root (the
# walks hand the tree to another account, as a build's do). From the repo root:
#   bench/tree_walk.sh
set -eu
swift build --build-tests --scratch-path "${SCRATCH:-.build}" >/dev/null
SLIPWAY_BENCH=1 swift test --skip-build --scratch-path "${SCRATCH:-.build}" --filter TreeWalkBench 2>&1 \
    | grep -E '^(tree:|walk|pre-build|post-build|remove)'
