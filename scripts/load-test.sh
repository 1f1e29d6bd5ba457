#!/usr/bin/env bash
# Load test on loopback: fake providers + a release voice-host + N real-time audio sessions.
#   scripts/load-test.sh [SESSIONS=200] [SECONDS=20] [agent-load flags...]
# Modes (agent-load flags): listening (default), `--speech` (a buzz every 4 s), or `--converse`
# [--turn-every S] [--barge-in SHARE] [--wav FILE] (timed turns: speech end -> first audio,
# holes in the agent's audio, the host's CPU per turn). `--json FILE --label TEXT` appends the
# figures as one JSON line (scripts/capacity.sh sweeps session counts that way).
# Environment:
#   PROVIDERS    fakes (default: the fake Deepgram, OpenAI and ElevenLabs servers) | local (no
#                keys, no fakes: the host's embedded offline STT, LLM and TTS from MODELS_DIR)
#   FAKE_FLAGS   flags for fake-providers, e.g. "--realistic" (production-like latencies);
#                the recogniser always runs with --loudness-is-speech (cheap endpointing).
#   FAKE_TRANSCRIPT  what the fake recogniser hears every utterance as (default: a nine-word
#                question, "could you tell me a little more about that please")
#   PLUGINS      none (default) | reference (the three Rust reference plug-ins) | python
#                (the Python intent plug-in with the Rust prompt and barge-in ones)
#   HOST_CORE / RIG_CORE   on a machine with 2+ cores the host is pinned to HOST_CORE (0) and
#                the fakes and the load tool to RIG_CORE (1), so each side's CPU is its own;
#                PIN=no leaves both to the scheduler (an offline host's models use every core).
#   HOST_BIN     the host binary to load (default target/release/voice-host): two builds
#                compared in one sitting, e.g. HOST_BIN=/tmp/voice-host-before.
#   Any other host setting in the environment (TURN_PLUGIN, TURN_MODEL, VAD_HANGOVER_MS, ...)
#   reaches the host as it is.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
sessions="${1:-200}"
seconds="${2:-20}"
shift $(( $# >= 2 ? 2 : $# ))
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

case "${PLUGINS:-none}" in
  none) intent=none prompt=none barge=none ;;
  reference) intent=plugins/dist/intent_keywords.wasm prompt=plugins/dist/prompt_persona.wasm barge=plugins/dist/barge_in_smart.wasm ;;
  python) intent=plugins/dist/intent_regex_py.wasm prompt=plugins/dist/prompt_persona.wasm barge=plugins/dist/barge_in_smart.wasm ;;
  *) echo "load-test: PLUGINS must be none, reference or python" >&2; exit 2 ;;
esac
for f in "$intent" "$prompt" "$barge"; do
  if [[ "$f" != none && ! -f "$f" ]]; then
    echo "load-test: $f is missing: run scripts/build-plugins.sh" >&2
    exit 1
  fi
done
case "${PROVIDERS:-fakes}" in
  fakes|local) ;;
  *) echo "load-test: PROVIDERS must be fakes or local" >&2; exit 2 ;;
esac
host_pin=() rig_pin=()
if [[ "${PIN:-yes}" != no ]] && command -v taskset >/dev/null && (( $(nproc) >= 2 )); then
  host_pin=(taskset -c "${HOST_CORE:-0}") rig_pin=(taskset -c "${RIG_CORE:-1}")
fi

scripts/build.sh --quiet
work="$(mktemp -d)"
cleanup() { kill "${host_pid:-}" "${fakes_pid:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

if [[ "${PROVIDERS:-fakes}" == fakes ]]; then
  # Every utterance is heard as one question (by default of nine words, five of which interrupt
  # a reply by the default rules) and answered in about seven seconds of speech, so a turn every
  # 10 s fits.
  # shellcheck disable=SC2086
  "${rig_pin[@]}" target/release/fake-providers --loudness-is-speech --whole-events ${FAKE_FLAGS:-} \
    --fallback "${FAKE_TRANSCRIPT:-could you tell me a little more about that please}" \
    --reply "=Of course. Let me tell you a little more about that, slowly and one thing after the other, until you stop me." \
    > "$work/fakes.env" &
  fakes_pid=$!
  for _ in $(seq 100); do grep -q ELEVENLABS_API_KEY "$work/fakes.env" 2>/dev/null && break; sleep 0.1; done
  # shellcheck disable=SC1090
  source <(grep '^export' "$work/fakes.env")
  rig_pids=(--rig-pid "$fakes_pid")
  providers="fakes ${FAKE_FLAGS:-(no latency)}"
else
  unset DEEPGRAM_API_KEY OPENAI_API_KEY ELEVENLABS_API_KEY
  export STT_PROVIDER=local LLM_PROVIDER=local TTS_PROVIDER=local
  rig_pids=()
  providers="local (offline models)"
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BIND=127.0.0.1 PORT="$port" MAX_SESSIONS=5000 MAX_SESSIONS_PER_IP=0 CONNECT_RATE_PER_MIN=0 LOG=warn \
  INTENT_PLUGIN="$intent" PROMPT_PLUGIN="$prompt" BARGE_IN_PLUGIN="$barge" \
  "${host_pin[@]}" "${HOST_BIN:-target/release/voice-host}" > "$work/host.log" 2>&1 &
host_pid=$!
for _ in $(seq 300); do
  curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  if ! kill -0 "$host_pid" 2>/dev/null; then
    echo "load-test: voice-host exited at start:" >&2
    cat "$work/host.log" >&2
    exit 1
  fi
  sleep 0.1
done

echo "load-test: $sessions sessions, $seconds s, plug-ins ${PLUGINS:-none}, providers $providers, host on ${host_pin[*]:-any core}"
"${rig_pin[@]}" target/release/agent-load --url "ws://127.0.0.1:$port/agent" --sessions "$sessions" \
  --seconds "$seconds" --pid "$host_pid" "${rig_pids[@]}" "$@"
curl -fs "http://127.0.0.1:$port/metrics" | grep -E '^voice_(stt_audio_dropped_total|session_panics_total|sessions_total) ' || true
