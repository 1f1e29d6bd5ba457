#!/usr/bin/env bash
# Builds every plug-in guest crate under plugins/ for wasm32-wasip2 and copies each component to
# plugins/dist/<crate_name_with_underscores>.wasm (write-then-rename, so a running host that
# watches these files never sees a half-written component).
#
# Usage: scripts/build-plugins.sh            # all plug-ins, hostile test plug-ins included
#        scripts/build-plugins.sh CRATE...   # only these crates
# Needs: rustup target add wasm32-wasip2
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if [ "$#" -gt 0 ]; then
    crates=("$@")
else
    crates=()
    for manifest in plugins/*/Cargo.toml; do
        crates+=("$(basename "$(dirname "$manifest")")")
    done
fi

# Components need no debug info; keep them small and the settings identical to the test suite's
# build (host/tests/plugins_common) so both share one cached build.
export CARGO_PROFILE_RELEASE_DEBUG=false
export CARGO_PROFILE_RELEASE_STRIP=debuginfo

args=()
for crate in "${crates[@]}"; do
    args+=(-p "$crate")
done
cargo build --release --target wasm32-wasip2 "${args[@]}"

target_dir="${CARGO_TARGET_DIR:-$root/target}"
mkdir -p plugins/dist
for crate in "${crates[@]}"; do
    name="${crate//-/_}"
    src="$target_dir/wasm32-wasip2/release/$name.wasm"
    cp "$src" "plugins/dist/.$name.wasm.tmp"
    mv -f "plugins/dist/.$name.wasm.tmp" "plugins/dist/$name.wasm"
    echo "plugins/dist/$name.wasm"
done
