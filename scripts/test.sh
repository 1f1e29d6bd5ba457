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
echo "== building the workspace (release)"
scripts/build.sh
echo "== installing offline models"
target/release/voice-host models install
echo "== running tests"
cargo test --workspace --release --no-fail-fast -- --test-threads=2
echo "== soak, 60 s with 50 sessions (scripts/soak.sh MINUTES [SESSIONS] for the long run)"
SOAK_SECONDS=60 SOAK_MAX_RSS_GROWTH_MIB=64 SOAK_MAX_FD_GROWTH=64 scripts/soak.sh 1 50
echo "== deployment files (hadolint, kustomize, Kubernetes schemas, the host with their settings)"
scripts/check-deploy.sh
echo "== browser page in headless Chromium"
scripts/test-browser.sh
