#!/usr/bin/env bash
# Quick start: install what is needed, build the reference plug-ins, install the offline models
# and run the server on PORT (default 4010) with the embedded offline providers (no API keys).
# Set DEEPGRAM_API_KEY / OPENAI_API_KEY / ELEVENLABS_API_KEY to use the cloud providers instead.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

scripts/install-deps.sh
scripts/build-plugins.sh >/dev/null
cargo build --release -p voice-host
target/release/voice-host models install
exec target/release/voice-host "$@"
