#!/usr/bin/env bash
# Replay test: builds {{name}}.wasm and runs it on recorded {{slot}} calls with
# `voice-host plugins replay`. It fails when the component faults or decides otherwise than
# recorded on more than MAX_DISAGREEMENT percent of the calls (default 0).
#
# Usage: ./test.sh [RECORDING.jsonl [more replay options]]   (default: sample-recording.jsonl)
# VOICE_HOST names the voice-host binary (default: voice-host on PATH).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

voice_host="${VOICE_HOST:-voice-host}"
if ! command -v "$voice_host" >/dev/null 2>&1; then
    echo "test.sh: $voice_host not found: put voice-host on PATH or set VOICE_HOST" >&2
    exit 2
fi
recording="${1:-sample-recording.jsonl}"
shift || true
./build.sh >&2
exec "$voice_host" plugins replay {{name}}.wasm "$recording" \
    --max-disagreement "${MAX_DISAGREEMENT:-0}" "$@"
