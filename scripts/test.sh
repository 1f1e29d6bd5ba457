#!/usr/bin/env bash
# Runs the whole test suite: installs prerequisites, builds the plug-ins and the offline models
# the tests use, then runs every test of the workspace.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# Everything a test needs is installed below, so a missing prerequisite is a failure, never a
# skip (tests and scripts read CI=true that way).
export CI=true

scripts/install-deps.sh
echo "== building plug-ins (wasm32-wasip2)"
scripts/build-plugins.sh >/dev/null
echo "== installing offline models"
cargo run --quiet --release -p voice-host -- models install
echo "== running tests"
cargo test --workspace --release --no-fail-fast -- --test-threads=2
echo "== browser page in headless Chromium"
scripts/test-browser.sh
