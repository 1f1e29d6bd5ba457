#!/usr/bin/env bash
# Builds {{name}}.wasm, the {{slot}} plug-in, in this directory with componentize-js {{componentize_js_version}}.
# componentize-js is installed into .tools/ on first use (node and npm), unless
# COMPONENTIZE_JS_DIR names an existing install (a directory made by
# `npm install --prefix DIR @bytecodealliance/componentize-js@{{componentize_js_version}}`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

version={{componentize_js_version}}
if ! command -v node >/dev/null 2>&1; then
    echo "build.sh: node is needed (Debian: apt-get install nodejs npm)" >&2
    exit 1
fi
if [ -n "${COMPONENTIZE_JS_DIR:-}" ]; then
    tools="$COMPONENTIZE_JS_DIR"
    if [ ! -f "$tools/node_modules/@bytecodealliance/componentize-js/package.json" ]; then
        echo "build.sh: COMPONENTIZE_JS_DIR=$tools holds no componentize-js" \
            "(npm install --prefix \"$tools\" @bytecodealliance/componentize-js@$version)" >&2
        exit 1
    fi
    if ! grep -q "\"version\": \"$version\"" "$tools/node_modules/@bytecodealliance/componentize-js/package.json"; then
        echo "build.sh: warning: COMPONENTIZE_JS_DIR=$tools is not componentize-js $version" >&2
    fi
else
    tools=".tools/componentize-js-$version"
    if [ ! -f "$tools/.installed" ]; then
        if ! command -v npm >/dev/null 2>&1; then
            echo "build.sh: npm is needed (Debian: apt-get install npm)" >&2
            exit 1
        fi
        rm -rf "$tools"
        mkdir -p "$tools"
        npm install --prefix "$tools" --save-exact --silent --no-audit --no-fund --no-update-notifier \
            "@bytecodealliance/componentize-js@$version" >/dev/null
        touch "$tools/.installed"
    fi
fi

world="$(tr -d '[:space:]' < world)"
# Every optional WASI feature off: the component imports nothing but voice:policy (console.log
# goes nowhere; use `log`). Write, then rename: a host watching {{name}}.wasm never reads half a file.
node "$tools/node_modules/@bytecodealliance/componentize-js/src/cli.js" app.js \
    --wit wit --world-name "$world" --out ".{{name}}.wasm.tmp" \
    --disable stdio random clocks http fetch-event >/dev/null
mv -f ".{{name}}.wasm.tmp" "{{name}}.wasm"
echo "{{name}}.wasm"
