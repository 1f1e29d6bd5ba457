#!/usr/bin/env bash
# Builds every binary and test of the workspace (release) in one cargo invocation, the one the
# test suite uses. Cargo resolves features per invocation: `-p voice-host` alone and the
# workspace's tests enable different features of shared crates (tokio, wasmtime, ...), so building
# through different invocations compiles those crates, and the host, once per invocation. The test
# command, the soak and the load and browser scripts all build through here and share one build.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
cargo test --workspace --release --no-run "$@"
