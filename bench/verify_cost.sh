#!/usr/bin/env bash
# The cost of verifying one signed manifests commit, in-process (what every pass with a new tip pays),
# for ed25519 and ecdsa-nistp256 keys: `slipway trust --check` times the extraction + verification.
#   bash bench/verify_cost.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
swift build -c release >/dev/null 2>&1
slipway="$(swift build -c release --show-bin-path)/slipway"
work=$(mktemp -d /tmp/slipway-verify.XXXXXX)
trap 'rm -rf "$work"' EXIT
git_() { git -c user.name=b -c user.email=b@b.invalid "$@"; }
printf '%-22s %10s %10s %10s\n' "key type" "median µs" "min µs" "max µs"
for type in ed25519 ecdsa; do
  rm -rf "$work/m" "$work/state"; mkdir -p "$work/m/manifests"
  ssh-keygen -q -t "$type" -N "" -C k -f "$work/key-$type" <<<y >/dev/null
  echo "k namespaces=\"git\" $(cut -d' ' -f1,2 "$work/key-$type.pub")" > "$work/allowed-$type"
  git_ init -q -b main "$work/m"
  echo "app: a" > "$work/m/manifests/a.yaml"   # invalid on purpose: only the signature matters here
  git_ -C "$work/m" add -A
  git_ -C "$work/m" -c gpg.format=ssh -c user.signingkey="$work/key-$type" commit -q -S -m signed
  printf 'manifests: {repo: %s, verify: {allowed_signers: %s}}\napps_root: %s/apps\nstate_dir: %s/state\n' \
    "$work/m" "$work/allowed-$type" "$work" "$work" > "$work/agent.yaml"
  "$slipway" agent --once --config "$work/agent.yaml" >/dev/null 2>&1 || true   # fetches the mirror
  times=()
  for _ in $(seq "$runs"); do
    t=$("$slipway" trust --check main --config "$work/agent.yaml" | sed -n 's/.*verified in \([0-9]*\) µs.*/\1/p')
    times+=("$t")
  done
  sorted=$(printf '%s\n' "${times[@]}" | sort -n)
  printf '%-22s %10s %10s %10s\n' "$type" "$(sed -n "$(( (runs + 1) / 2 ))p" <<<"$sorted")" "$(head -1 <<<"$sorted")" "$(tail -1 <<<"$sorted")"
done
