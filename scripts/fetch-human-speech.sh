#!/usr/bin/env bash
# Fetches the two recordings of human speech the end-of-turn report's `--human` mode reads
# (host/tests/fixtures/turn-set/human.toml): tests/data/test.wav (a lecture, 60 s) and
# examples/c++/aepyx.wav (a news broadcast, 169 s) from the silero-vad 6.2.3 source distribution
# on PyPI (MIT, Copyright (c) 2020-present Silero Team), with its licence, into the models
# directory's human-speech/ ($MODELS_DIR, else $XDG_CACHE_HOME/voice-host/models, else
# ~/.cache/voice-host/models), where the sdist is kept too. The sdist's SHA-256 is pinned.
# Idempotent: nothing is fetched when the recordings and the licence are there.
set -euo pipefail

dir="${MODELS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/voice-host/models}/human-speech"
python="${PYTHON:-python3}"
sdist="silero_vad-6.2.3.tar.gz"
sum="d7a23b09202be4953915cb9173089bb307eed0418a9bd4794d9ec5af07fa1996"
members=(tests/data/test.wav examples/c++/aepyx.wav LICENSE)

[[ -f "$dir/test.wav" && -f "$dir/aepyx.wav" && -f "$dir/LICENSE" ]] && exit 0
mkdir -p "$dir"
if ! echo "$sum  $dir/$sdist" | sha256sum --check --status 2>/dev/null; then
    rm -f "$dir/$sdist"
    # pip reads an sdist's metadata with its build backend (hatchling, fetched from PyPI too).
    if ! PIP_ROOT_USER_ACTION=ignore "$python" -m pip download --quiet --disable-pip-version-check \
        --no-input --no-deps --no-binary :all: --dest "$dir" \
        "silero-vad==6.2.3" >"$dir/pip.log" 2>&1; then
        echo "error: cannot download silero-vad 6.2.3 from PyPI (offline? see $dir/pip.log)" >&2
        exit 1
    fi
    rm -f "$dir/pip.log"
    if ! echo "$sum  $dir/$sdist" | sha256sum --check --status; then
        echo "error: $dir/$sdist does not have the pinned SHA-256 $sum" >&2
        exit 1
    fi
fi
staging="$(mktemp -d)"
trap 'rm -rf "$staging"' EXIT
tar -xzf "$dir/$sdist" -C "$staging" "${members[@]/#/silero_vad-6.2.3/}"
for m in "${members[@]}"; do
    cp "$staging/silero_vad-6.2.3/$m" "$dir/"
done
echo "recordings in $dir" >&2
