#!/usr/bin/env bash
# Installs the build and runtime prerequisites of voice-host on Debian/Ubuntu:
#   - espeak-ng + libespeak-ng-dev  (offline text-to-speech, feature `local-tts`)
#   - cmake + libclang-dev          (llama.cpp build for the offline LLM, feature `local-llm`)
#   - sox                           (test speech generation)
#   - redis-server                  (session resume across replicas, started by the tests)
#   - docker-registry               (an OCI registry for plug-ins pulled by reference, started by
#                                    the tests)
#   - fonts-dejavu-core, curl       (the soak: its plot's text, the host's health; scripts/soak.sh)
#   - the wasm32-wasip2 Rust target (plug-in builds)
#   - python3 with pip, when missing (offline models and componentize-py for Python plug-ins)
#   - node and npm, when missing (componentize-js for JavaScript plug-ins)
# Idempotent and quiet: when everything is present it only checks and exits.
# Runs apt-get through sudo when not root.
set -euo pipefail

APT_PACKAGES=(espeak-ng libespeak-ng-dev sox cmake libclang-dev redis-server docker-registry
    fonts-dejavu-core curl)
if ! python3 -m pip --version >/dev/null 2>&1; then
    APT_PACKAGES+=(python3 python3-pip)
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    APT_PACKAGES+=(nodejs npm)
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]} > 0)); then
    if [[ $(id -u) -eq 0 ]]; then
        SUDO=()
    else
        SUDO=(sudo)
    fi
    echo "install-deps: installing ${missing[*]}"
    "${SUDO[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi

if command -v rustup >/dev/null 2>&1; then
    if ! rustup target list --installed | grep -qx wasm32-wasip2; then
        echo "install-deps: adding Rust target wasm32-wasip2"
        rustup target add wasm32-wasip2 >/dev/null
    fi
else
    echo "install-deps: rustup not found; install Rust from https://rustup.rs then rerun" >&2
    exit 1
fi
