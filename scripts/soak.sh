#!/usr/bin/env bash
# Soak on loopback: fake providers + a release voice-host + SESSIONS conversing sessions (a
# typed question, a spoken barge-in over the reply, the answer to it, again) for MINUTES.
# Samples the host's resident memory, descriptors, threads and sessions every 10 s, prints the
# table and the growth after warm-up, writes soak.csv and soak.png to SOAK_OUT (default
# target/soak), and fails when a session failed, memory/descriptors grew past the bounds, or a
# session outlived its client by 15 s.
#
#   scripts/soak.sh MINUTES [SESSIONS=200]
#
# SOAK_SECONDS overrides MINUTES for short runs (the test command runs 60 s with 50 sessions).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [[ $# -lt 1 || ! $1 =~ ^[0-9]+$ ]]; then
  echo "usage: $0 MINUTES [SESSIONS]" >&2
  exit 2
fi
seconds="${SOAK_SECONDS:-$(($1 * 60))}"
sessions="${2:-200}"
out="${SOAK_OUT:-$root/target/soak}"
# Warm-up: a tenth of the run, at least 20 s (buffers, pools and caches fill first).
warmup=$((seconds / 10 > 20 ? seconds / 10 : 20))
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [[ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]]; then
  echo "soak: the plot needs fonts-dejavu-core (scripts/install-deps.sh installs it)" >&2
  exit 1
fi

scripts/build.sh --quiet
work="$(mktemp -d)"
cleanup() { kill "${host_pid:-}" "${fakes_pid:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

story="Once upon a time there was a lighthouse keeper who counted the ships that passed his rock, and every night he wrote their names in a thick blue book."
target/release/fake-providers --reply "story=$story" > "$work/fakes.env" &
fakes_pid=$!
for _ in $(seq 100); do grep -q ELEVENLABS_API_KEY "$work/fakes.env" 2>/dev/null && break; sleep 0.1; done
# shellcheck disable=SC1090
source <(grep '^export' "$work/fakes.env")

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# Barge-in on one word at any point, so every story is talked over.
BIND=127.0.0.1 PORT="$port" MAX_SESSIONS=5000 MAX_SESSIONS_PER_IP=0 CONNECT_RATE_PER_MIN=0 \
  TEXT_TURNS_PER_MIN=0 TTS_MIN_DURATION_MS=0 TTS_BARGE_THRESHOLD_WORDS=1 LOG=warn \
  INTENT_PLUGIN="${INTENT_PLUGIN:-none}" PROMPT_PLUGIN="${PROMPT_PLUGIN:-none}" BARGE_IN_PLUGIN="${BARGE_IN_PLUGIN:-none}" \
  target/release/voice-host > "$work/host.log" 2>&1 &
host_pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

target/release/soak --url "ws://127.0.0.1:$port/agent" --metrics "http://127.0.0.1:$port/metrics" \
  --pid "$host_pid" --sessions "$sessions" --seconds "$seconds" --warmup-s "$warmup" --out "$out" \
  ${SOAK_MAX_RSS_GROWTH_MIB:+--max-rss-growth-mib "$SOAK_MAX_RSS_GROWTH_MIB"} \
  ${SOAK_MAX_FD_GROWTH:+--max-fd-growth "$SOAK_MAX_FD_GROWTH"}
# The clients are gone: every session must end soon after (one that outlives its client leaks).
active=""
waited=0
while (( waited < 150 )); do
  active=$(curl -fs "http://127.0.0.1:$port/metrics" | awk '$1 == "voice_sessions_active" {print $2}')
  [[ "$active" == 0 ]] && break
  sleep 0.1
  waited=$((waited + 1))
done
curl -fs "http://127.0.0.1:$port/metrics" | grep -E '^voice_(session_panics_total|sessions_total|sessions_active) ' || true
if [[ "$active" != 0 ]]; then
  echo "soak: ${active:-?} sessions still active 15 s after their clients left" >&2
  exit 1
fi
echo "every session ended within $((waited * 100)) ms of its client leaving"
