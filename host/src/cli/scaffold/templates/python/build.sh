#!/usr/bin/env bash
# Builds {{name}}.wasm, the {{slot}} plug-in, in this directory with componentize-py {{componentize_py_version}}.
# componentize-py is installed into .tools/ on first use (python3 with pip), unless
# COMPONENTIZE_PY_DIR names an existing install (a directory made by
# `pip install --target DIR componentize-py=={{componentize_py_version}}`). PYTHON picks the interpreter.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

version={{componentize_py_version}}
python="${PYTHON:-python3}"
if [ -n "${COMPONENTIZE_PY_DIR:-}" ]; then
    tools="$COMPONENTIZE_PY_DIR"
    if [ ! -d "$tools/componentize_py" ]; then
        echo "build.sh: COMPONENTIZE_PY_DIR=$tools holds no componentize-py" \
            "(pip install --target \"$tools\" componentize-py==$version)" >&2
        exit 1
    fi
    if [ ! -d "$tools/componentize_py-$version.dist-info" ]; then
        echo "build.sh: warning: COMPONENTIZE_PY_DIR=$tools is not componentize-py $version" >&2
    fi
else
    tools=".tools/componentize-py-$version"
    if [ ! -f "$tools/.installed" ]; then
        if ! "$python" -m pip --version >/dev/null 2>&1; then
            echo "build.sh: $python with pip is needed (Debian: apt-get install python3-pip)" >&2
            exit 1
        fi
        rm -rf "$tools"
        PIP_ROOT_USER_ACTION=ignore "$python" -m pip install --quiet --disable-pip-version-check \
            --no-input --target "$tools" "componentize-py==$version"
        touch "$tools/.installed"
    fi
fi

world="$(tr -d '[:space:]' < world)"
# Write, then rename: a host watching {{name}}.wasm never reads half a file.
PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$tools" "$python" -c \
    'import sys; from componentize_py import script; sys.argv[0] = "componentize-py"; sys.exit(script())' \
    -d wit -w "$world" componentize -p . app -o ".{{name}}.wasm.tmp" >/dev/null
mv -f ".{{name}}.wasm.tmp" "{{name}}.wasm"
echo "{{name}}.wasm"
