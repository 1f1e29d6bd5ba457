#!/usr/bin/env bash
# The end-of-turn report (docs/benchmarks.md, "End of turn: labelled utterances"): false cut-offs
# and end-of-turn delay on the labelled utterances of host/tests/fixtures/turn-set, spoken by
# espeak-ng voices at several rates, for the silence rules, the reference policy turn-smart on
# the words alone, and Smart Turn v3.2 + turn-smart.
#
# Usage: scripts/end-of-turn-report.sh [OPTIONS]   (options: host/examples/end_of_turn_report.rs,
#        e.g. --verbose, --stt-ms 200, --strip-punctuation, --config model_weight=0.3)
# Needs: espeak-ng (scripts/install-deps.sh), the end-of-turn model and ONNX Runtime
# (voice-host models install), the wasm32-wasip2 target for the plug-in.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

scripts/build-plugins.sh turn-smart >/dev/null
cargo build --release -p voice-host --example end_of_turn_report
exec target/release/examples/end_of_turn_report "$@"
