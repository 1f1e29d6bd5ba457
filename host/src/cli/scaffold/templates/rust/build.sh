#!/usr/bin/env bash
# Builds {{name}}.wasm, the {{slot}} plug-in, in this directory.
# Needs: rustup target add wasm32-wasip2. Honours CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx wasm32-wasip2; then
    echo "build.sh: the wasm32-wasip2 target is missing: rustup target add wasm32-wasip2" >&2
    exit 1
fi
cargo build --release --target wasm32-wasip2
target_dir="${CARGO_TARGET_DIR:-target}"
# Write, then rename: a host watching {{name}}.wasm never reads half a file.
cp "$target_dir/wasm32-wasip2/release/{{lib}}.wasm" ".{{name}}.wasm.tmp"
mv -f ".{{name}}.wasm.tmp" "{{name}}.wasm"
echo "{{name}}.wasm"
