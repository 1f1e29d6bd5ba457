#!/usr/bin/env bash
# Capacity sweep: conversing sessions (a turn every 10 s, 20 % barge-ins) at growing counts,
# the host pinned alone to one core, the rig on the other (scripts/load-test.sh). Appends one
# JSON line per run to target/capacity/capacity.jsonl and draws target/capacity/capacity.png.
#   scripts/capacity.sh [SECONDS=30] [COUNTS="10 100 250 500 750 1000"] [LABEL]
# PLUGINS and FAKE_FLAGS pass through to load-test.sh; LABEL names the configuration in the
# plot (default: "<plug-ins>, <fake flags>").
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
seconds="${1:-30}"
counts="${2:-10 100 250 500 750 1000}"
label="${3:-${PLUGINS:-none}${FAKE_FLAGS:+, $FAKE_FLAGS}}"
out="${CAPACITY_OUT:-$root/target/capacity}"
mkdir -p "$out"
for n in $counts; do
  scripts/load-test.sh "$n" "$seconds" --converse --turn-every 10 --barge-in 0.2 \
    --json "$out/capacity.jsonl" --label "$label" || echo "capacity: the run with $n sessions failed" >&2
done
target/release/load-plot "$out/capacity.jsonl" "$out/capacity.png" \
  "conversing sessions, host on one core: speech end -> first audio and host CPU"
