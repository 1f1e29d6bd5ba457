#!/usr/bin/env bash
# Load test on loopback: fake providers + a release voice-host + N real-time audio sessions.
# Prints upgrade->ready latency, client-side pacing, errors and the host's RSS per session.
#   scripts/load-test.sh [SESSIONS=200] [SECONDS=20] [--speech]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
sessions="${1:-200}"
seconds="${2:-20}"
extra="${3:-}"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

scripts/build.sh --quiet
work="$(mktemp -d)"
cleanup() { kill "${host_pid:-}" "${fakes_pid:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

target/release/fake-providers > "$work/fakes.env" &
fakes_pid=$!
for _ in $(seq 100); do grep -q ELEVENLABS_API_KEY "$work/fakes.env" 2>/dev/null && break; sleep 0.1; done
# shellcheck disable=SC1090
source <(grep '^export' "$work/fakes.env")

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BIND=127.0.0.1 PORT="$port" MAX_SESSIONS=5000 MAX_SESSIONS_PER_IP=0 CONNECT_RATE_PER_MIN=0 LOG=warn \
  INTENT_PLUGIN="${INTENT_PLUGIN:-none}" PROMPT_PLUGIN="${PROMPT_PLUGIN:-none}" BARGE_IN_PLUGIN="${BARGE_IN_PLUGIN:-none}" \
  target/release/voice-host > "$work/host.log" 2>&1 &
host_pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

target/release/agent-load --url "ws://127.0.0.1:$port/agent" --sessions "$sessions" --seconds "$seconds" --pid "$host_pid" $extra
curl -fs "http://127.0.0.1:$port/metrics" | grep -E '^voice_(stt_audio_dropped_total|session_panics_total|sessions_total) ' || true
echo "host CPU time (user+sys, clock ticks): $(awk '{print $14+$15}' /proc/$host_pid/stat)"
