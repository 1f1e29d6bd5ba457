#!/usr/bin/env bash
# Speech end -> first agent audio, as a caller measures it, in five configurations: one line of
# a table each, every run against its own fresh voice-host on a free loopback port
# (scripts/load-test.sh --converse: the host pinned to one core and the rig to the other).
#   scripts/latency-report.sh [SECONDS=40]
# Rows:
#   1. fake providers with production-like latencies (fake-providers --realistic: recogniser
#      150 ms, first token 350 ms, first audio 150 ms), default host settings
#   2. the same with PREEMPTIVE_GENERATION=off (the LLM waits for the committed turn)
#   3. the same as 1 with the end-of-turn plug-in (TURN_PLUGIN=plugins/dist/turn_smart.wasm,
#      TURN_MODEL=auto, TURN_WORDS_MODEL=auto)
#   4. offline: no keys, the host's embedded Whisper, SmolLM2 and espeak-ng, default settings
#   5. offline with the end-of-turn plug-in as in 3
# The user says "What's the weather like in Paris today?" (host/tests/fixtures/smart-turn/
# weather.wav, espeak-ng; the fake recogniser hears the same words), a turn every 12 s, no
# barge-ins; speech end is when the last frame with voice is sent (not the recording's trailing
# silence). The offline rows skip, saying what installs them, when the models are missing.
# Environment:
#   SESSIONS (4) / OFFLINE_SESSIONS (2)   conversations at once on the fakes / offline (the local
#                models share 2 cores; two conversations' turns, spread over the turn interval,
#                seldom overlap)
#   TURN_EVERY (12) / OFFLINE_TURN_EVERY (15)   seconds between a session's turns: the next
#                turn must not talk over the reply (the fakes' lasts about 7 s; it starts about
#                4 s into the turn: 2.7 s of recording, then the wait measured here)
#   TURN_MODEL (auto)   the end-of-turn model of rows 3 and 5 (none: the plug-in's words only)
#   TURN_WORDS_MODEL (auto)   the text end-of-turn model of rows 3 and 5 (none: without it)
#   ROWS ("1 2 3 4 5")   the rows to run;  WAV   another utterance (16 kHz mono PCM16) and
#   TRANSCRIPT   its words, for the fake recogniser
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
seconds="${1:-40}"
rows="${ROWS:-1 2 3 4 5}"
wav="${WAV:-host/tests/fixtures/smart-turn/weather.wav}"
default_transcript="What's the weather like in Paris today?"
transcript="${TRANSCRIPT:-$default_transcript}"
turn_plugin=plugins/dist/turn_smart.wasm
began=$SECONDS
# Each row sets these itself; none leaks in from the caller's environment.
unset PREEMPTIVE_GENERATION TURN_PLUGIN

scripts/build.sh --quiet
if [[ " $rows " =~ " "[35]" " && ! -f "$turn_plugin" ]]; then
  scripts/build-plugins.sh turn-smart
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
results="$work/latency.jsonl"

# The offline rows need the models; `models check` names what is missing.
offline_missing=""
if ! target/release/voice-host models check > "$work/models.txt" 2>&1; then
  offline_missing="offline models missing: install them with \`${MODELS_DIR:+MODELS_DIR=$MODELS_DIR }target/release/voice-host models install\` (or scripts/install-models.sh)"
  echo "latency-report: $offline_missing:" >&2
  cat "$work/models.txt" >&2
fi
preemptive="PREEMPTIVE_GENERATION=off"
if ! target/release/voice-host --help 2>/dev/null | grep -q PREEMPTIVE_GENERATION; then
  preemptive+=" (unknown to this build: as row 1)"
fi

# run LABEL SESSIONS TURN_EVERY [VAR=VALUE...]: one load-test run, its figures appended to
# $results; its summary lines printed.
run() {
  local label="$1" sessions="$2" every="$3"
  shift 3
  echo "== $label ($sessions sessions, a turn every $every s, $seconds s)"
  if env "$@" scripts/load-test.sh "$sessions" "$seconds" --converse --turn-every "$every" \
      --barge-in 0 --wav "$wav" --json "$results" --label "$label" > "$work/run.log" 2>&1; then
    grep -E '^(utterance|turns|speech end|host stages|host CPU|holes)' "$work/run.log" | sed 's/^/   /'
  else
    echo "   the run failed:"
    tail -20 "$work/run.log" | sed 's/^/   /'
  fi
}

fakes=(FAKE_FLAGS=--realistic FAKE_TRANSCRIPT="$transcript" PROVIDERS=fakes)
turn=(TURN_PLUGIN="$turn_plugin" TURN_MODEL="${TURN_MODEL:-auto}" TURN_WORDS_MODEL="${TURN_WORDS_MODEL:-auto}")
models="TURN_MODEL=${TURN_MODEL:-auto} TURN_WORDS_MODEL=${TURN_WORDS_MODEL:-auto}"
offline=(PROVIDERS=local PIN=no)
skipped=()
for row in $rows; do
  case "$row" in
    1) run "1. fakes --realistic, defaults" "${SESSIONS:-4}" "${TURN_EVERY:-12}" "${fakes[@]}" ;;
    2) run "2. fakes --realistic, $preemptive" "${SESSIONS:-4}" "${TURN_EVERY:-12}" "${fakes[@]}" \
         PREEMPTIVE_GENERATION=off ;;
    3) run "3. fakes --realistic, turn_smart + $models" "${SESSIONS:-4}" "${TURN_EVERY:-12}" \
         "${fakes[@]}" "${turn[@]}" ;;
    4|5)
      label="$row. offline, defaults"
      extra=()
      if [[ "$row" == 5 ]]; then label="5. offline, turn_smart + $models" extra=("${turn[@]}"); fi
      if [[ -n "$offline_missing" ]]; then
        skipped+=("$label: skipped: $offline_missing")
        continue
      fi
      run "$label" "${OFFLINE_SESSIONS:-2}" "${OFFLINE_TURN_EVERY:-15}" "${offline[@]}" "${extra[@]}" ;;
    *) echo "latency-report: no row $row (1-5)" >&2; exit 2 ;;
  esac
done

echo
echo "Speech end -> first agent audio (client side), $seconds s a run; host stages are p50 ms from the host's end of speech (turn_metrics)"
echo
echo "| Configuration | Sessions | Turns answered / started | p50 ms | p95 ms | final | LLM 1st token | 1st sentence | TTS 1st audio | 1st audio sent |"
echo "|---|---|---|---|---|---|---|---|---|---|"
if [[ -s "$results" ]]; then
  jq -r 'def ms: if . == null or (type == "number" and isnan) then "-" else (. | round | tostring) end;
    "| \(.label) | \(.sessions) | \(.turns.answered) / \(.turns.started)"
    + (if .barge_ins > 0 then " (\(.barge_ins) over a reply)" else "" end)
    + " | \(.first_audio_ms.p50 | ms) | \(.first_audio_ms.p95 | ms) | "
    + ([.stages_ms as $s | "transcript_final", "llm_first_token", "first_sentence", "tts_first_audio",
        "first_audio_sent" | $s[.].p50 | ms] | join(" | ")) + " |"' "$results"
fi
for s in "${skipped[@]}"; do echo "| ${s%%: skipped: *} | skipped: ${s#*: skipped: } |"; done
echo
echo "latency-report: done in $(( SECONDS - began )) s"
