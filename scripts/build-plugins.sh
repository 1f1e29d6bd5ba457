#!/usr/bin/env bash
# Builds the plug-ins into plugins/dist/<name_with_underscores>.wasm (write-then-rename, so a
# running host that watches these files never sees a half-written component):
#   - every Rust guest crate under plugins/ (wasm32-wasip2, wit-bindgen);
#   - every Python plug-in under plugins/python/<name>/ (app.py plus a `world` file naming its
#     WIT world), with componentize-py, installed into target/tools on first use (pip);
#   - every JavaScript plug-in under plugins/js/<name>/ (app.js plus a `world` file), with
#     componentize-js, installed into target/tools on first use (npm).
#
# Usage: scripts/build-plugins.sh            # all plug-ins, test plug-ins included
#        scripts/build-plugins.sh NAME...    # only these (crate, plugins/python/ or plugins/js/ names)
# Needs: rustup target add wasm32-wasip2; python3 with pip for the Python plug-ins; node and npm
# for the JavaScript plug-ins.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

COMPONENTIZE_PY_VERSION=0.25.1
COMPONENTIZE_JS_VERSION=0.23.0

crates=()
python_plugins=()
js_plugins=()
if [ "$#" -gt 0 ]; then
    for name in "$@"; do
        if [ -f "plugins/python/$name/app.py" ]; then
            python_plugins+=("$name")
        elif [ -f "plugins/js/$name/app.js" ]; then
            js_plugins+=("$name")
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
    for app in plugins/js/*/app.js; do
        [ -f "$app" ] && js_plugins+=("$(basename "$(dirname "$app")")")
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

if ((${#js_plugins[@]} > 0)); then
    tools="$target_dir/tools/componentize-js-$COMPONENTIZE_JS_VERSION"
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        echo "build-plugins: node and npm are needed for the JavaScript plug-ins (Debian: apt-get install nodejs npm)" >&2
        exit 1
    fi
    if [ ! -f "$tools/.installed" ]; then
        rm -rf "$tools"
        mkdir -p "$tools"
        npm install --prefix "$tools" --save-exact --silent --no-audit --no-fund --no-update-notifier \
            "@bytecodealliance/componentize-js@$COMPONENTIZE_JS_VERSION" >/dev/null
        touch "$tools/.installed"
    fi
    for plugin in "${js_plugins[@]}"; do
        dir="plugins/js/$plugin"
        name="${plugin//-/_}"
        world="$(tr -d '[:space:]' < "$dir/world")"
        out="$target_dir/js-plugins/$name.wasm"
        mkdir -p "$(dirname "$out")"
        # Rebuild only when the source, the WIT or the tool changed.
        if [ ! -f "$out" ] || [ -n "$(find "$dir" wit "$tools/.installed" -newer "$out" -type f | head -1)" ]; then
            # Every optional WASI feature of the engine off: the component then imports nothing
            # but voice:policy (no stdio, clocks, randomness or HTTP; see docs/plugins.md).
            node "$tools/node_modules/@bytecodealliance/componentize-js/src/cli.js" "$dir/app.js" \
                --wit wit --world-name "$world" --out "$out.tmp" \
                --disable stdio random clocks http fetch-event >/dev/null
            mv -f "$out.tmp" "$out"
        fi
        cp "$out" "plugins/dist/.$name.wasm.tmp"
        mv -f "plugins/dist/.$name.wasm.tmp" "plugins/dist/$name.wasm"
        echo "plugins/dist/$name.wasm"
    done
fi
