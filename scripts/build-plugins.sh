#!/usr/bin/env bash
# Builds the plug-ins into plugins/dist/<name_with_underscores>.wasm (write-then-rename, so a
# running host that watches these files never sees a half-written component):
#   - every Rust guest crate under plugins/ (wasm32-wasip2, wit-bindgen);
#   - every Python plug-in under plugins/python/<name>/ (app.py plus a `world` file naming its
#     WIT world), with componentize-py, installed into target/tools on first use (pip).
#
# Usage: scripts/build-plugins.sh            # all plug-ins, test plug-ins included
#        scripts/build-plugins.sh NAME...    # only these (crate or plugins/python/ names)
# Needs: rustup target add wasm32-wasip2; python3 with pip for the Python plug-ins.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

COMPONENTIZE_PY_VERSION=0.25.1

crates=()
python_plugins=()
if [ "$#" -gt 0 ]; then
    for name in "$@"; do
        if [ -f "plugins/python/$name/app.py" ]; then
            python_plugins+=("$name")
        else
            crates+=("$name")
        fi
    done
else
    for manifest in plugins/*/Cargo.toml; do
        crates+=("$(basename "$(dirname "$manifest")")")
    done
    for app in plugins/python/*/app.py; do
        [ -f "$app" ] && python_plugins+=("$(basename "$(dirname "$app")")")
    done
fi

# Components need no debug info; keep them small and the settings identical to the test suite's
# build (host/tests/plugins/common) so both share one cached build.
export CARGO_PROFILE_RELEASE_DEBUG=false
export CARGO_PROFILE_RELEASE_STRIP=debuginfo

target_dir="${CARGO_TARGET_DIR:-$root/target}"
mkdir -p plugins/dist

if ((${#crates[@]} > 0)); then
    args=()
    for crate in "${crates[@]}"; do
        args+=(-p "$crate")
    done
    cargo build --release --target wasm32-wasip2 "${args[@]}"
    for crate in "${crates[@]}"; do
        name="${crate//-/_}"
        src="$target_dir/wasm32-wasip2/release/$name.wasm"
        cp "$src" "plugins/dist/.$name.wasm.tmp"
        mv -f "plugins/dist/.$name.wasm.tmp" "plugins/dist/$name.wasm"
        echo "plugins/dist/$name.wasm"
    done
fi

if ((${#python_plugins[@]} > 0)); then
    tools="$target_dir/tools/componentize-py-$COMPONENTIZE_PY_VERSION"
    python="${PYTHON:-python3}"
    if [ ! -f "$tools/.installed" ]; then
        if ! "$python" -m pip --version >/dev/null 2>&1; then
            echo "build-plugins: $python with pip is needed for the Python plug-ins (Debian: apt-get install python3-pip)" >&2
            exit 1
        fi
        rm -rf "$tools"
        PIP_ROOT_USER_ACTION=ignore "$python" -m pip install --quiet --disable-pip-version-check --no-input \
            --target "$tools" "componentize-py==$COMPONENTIZE_PY_VERSION"
        touch "$tools/.installed"
    fi
    for plugin in "${python_plugins[@]}"; do
        dir="plugins/python/$plugin"
        name="${plugin//-/_}"
        world="$(tr -d '[:space:]' < "$dir/world")"
        out="$target_dir/python-plugins/$name.wasm"
        mkdir -p "$(dirname "$out")"
        # Rebuild only when the source, the WIT or the tool changed.
        if [ ! -f "$out" ] || [ -n "$(find "$dir" wit "$tools/.installed" -newer "$out" -type f | head -1)" ]; then
            PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$tools" "$python" -c \
                'import sys; from componentize_py import script; sys.argv[0] = "componentize-py"; sys.exit(script())' \
                -d wit -w "$world" componentize -p "$dir" app -o "$out.tmp" >/dev/null
            mv -f "$out.tmp" "$out"
        fi
        cp "$out" "plugins/dist/.$name.wasm.tmp"
        mv -f "plugins/dist/.$name.wasm.tmp" "plugins/dist/$name.wasm"
        echo "plugins/dist/$name.wasm"
    done
fi
