#!/usr/bin/env bash
# The end-of-turn report (docs/benchmarks.md, "End of turn: labelled utterances"): false cut-offs
# and end-of-turn delay on the labelled utterances of host/tests/fixtures/turn-set, spoken by
# espeak-ng voices at several rates, for the silence rules, the reference policy turn-smart on
# the words alone, and Smart Turn v3.2 + turn-smart.
#
# With --human, the same on recordings of human speech (19: a lecture, a broadcast, meetings,
# unscripted monologues) and their labelled pauses
# (host/tests/fixtures/turn-set/human.toml), fetched first by scripts/fetch-human-speech.sh.
#
# With --neural (or --neural-segments), the espeak-ng set spoken by a neural voice (Piper's
# en_US-joe-medium), rendered first by scripts/fetch-neural-speech.sh.
#
# Usage: scripts/end-of-turn-report.sh [OPTIONS]   (options: host/examples/end_of_turn_report/,
#        e.g. --verbose, --stt-ms 200, --strip-punctuation, --config model_weight=0.3,
#        --human [--labelled-stops], --vad webrtc|silero (the VAD engine, as VAD_ENGINE),
#        --reply-ms N (count the cut-offs the user hears with a reply N ms after the commit),
#        --noise-dbfs N (white noise at N dB RMS under every espeak-ng clip),
#        --text-hold T (the text end-of-turn model beside Smart Turn, as TURN_WORDS_MODEL, with
#        turn-smart's text_hold = T))
# Needs: espeak-ng (scripts/install-deps.sh), the end-of-turn model, ONNX Runtime and (for
# --text-hold) SmolLM2 (voice-host models install), the wasm32-wasip2 target for the plug-in.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

for arg in "$@"; do
    if [[ "$arg" == --human ]]; then
        scripts/fetch-human-speech.sh
    fi
    if [[ "$arg" == --neural || "$arg" == --neural-segments ]]; then
        scripts/fetch-neural-speech.sh
    fi
done
scripts/build-plugins.sh turn-smart >/dev/null
cargo build --release -p voice-host --example end_of_turn_report
exec target/release/examples/end_of_turn_report "$@"
