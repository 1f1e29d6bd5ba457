#!/usr/bin/env bash
# End-to-end test of the browser page in a real headless Chromium whose microphone is a speech
# WAV file: starts the fake providers and a release voice-host wired to them, drives the page
# with tests/browser/browser.test.mjs (playwright-core, no browser download), and saves a
# screenshot to artifacts/browser.png. Exits non-zero when a check fails.
#
# Installs what it needs when missing: chromium, espeak-ng and sox (apt), and the npm packages
# of tests/browser. If Chromium cannot be installed at all, it fails under CI=true (as
# scripts/test.sh runs it) and otherwise says so loudly and exits 0.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if [[ $(id -u) -eq 0 ]]; then SUDO=(); else SUDO=(sudo); fi
apt_install() {
    "${SUDO[@]}" apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [[ ! -x "$CHROMIUM" ]]; then
    echo "test-browser: installing chromium"
    if ! apt_install chromium || [[ ! -x "$CHROMIUM" ]]; then
        echo "##########################################################################" >&2
        echo "## test-browser: SKIPPED - Chromium could not be installed on this machine." >&2
        echo "## The browser page was NOT tested. Install chromium and rerun.            " >&2
        echo "##########################################################################" >&2
        [[ "${CI:-}" == true ]] && exit 1
        exit 0
    fi
fi
missing=()
for tool in espeak-ng sox node npm; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]} > 0)); then
    echo "test-browser: installing ${missing[*]}"
    apt_install "${missing[@]/#node/nodejs}"
fi

echo "== test-browser: npm packages (playwright-core only)"
(cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)

echo "== test-browser: the playback buffer (web/worklet.js) in node"
node --test tests/browser/worklet.test.mjs

echo "== test-browser: building voice-host and the fake providers (release)"
scripts/build.sh --quiet

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# The fake microphone (the file loops): three utterances with silences placed so that the first
# reply ends before the second question, and the third utterance is spoken over the story.
ask_weather="what is the weather in paris"
ask_story="please tell me a story"
barge_in="wait stop please tell me the time instead"
story="Once upon a time there was a lighthouse keeper. Every night she climbed the stairs. She lit the lamp for the ships at sea. One stormy night a small boat came close to the rocks. She rang the bell until the sailors saw the light."
speak() { # name text pad-before pad-after
    espeak-ng -v en-us -s 150 -w "$work/$1-raw.wav" "$2"
    sox "$work/$1-raw.wav" -r 16000 -c 1 -b 16 "$work/$1.wav" pad "$3" "$4"
}
speak weather "$ask_weather" 0.5 8.0
speak story "$ask_story" 0 5.0
speak stop "$barge_in" 0 14.0
sox "$work/weather.wav" "$work/story.wav" "$work/stop.wav" "$work/speech16k.wav"

target/release/fake-providers --utterance "$ask_weather" --utterance "$ask_story" \
    --utterance "$barge_in" --reply "story=$story" >"$work/fakes.env" 2>"$work/fakes.log" &
pids+=($!)
for _ in $(seq 1 100); do grep -q "Ctrl-C stops them" "$work/fakes.env" && break; sleep 0.1; done
grep -q "Ctrl-C stops them" "$work/fakes.env" || { cat "$work/fakes.log" >&2; echo "test-browser: fake providers did not start" >&2; exit 1; }
# shellcheck disable=SC1091
source <(grep '^export ' "$work/fakes.env")

# The host requires session tokens, as a public deployment does: the page gets one minted from
# the same secret (?token=) and must present it on the WebSocket.
export AUTH_SECRET="browser-test-secret-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
session_token="$(target/release/voice-host token --ttl 10m --sub browser-test)"
NO_COLOR=1 BIND=127.0.0.1 PORT=0 LOG_FORMAT=text LOG=info PLUGIN_WATCH=false \
    INTENT_PLUGIN=none PROMPT_PLUGIN=none BARGE_IN_PLUGIN=none \
    target/release/voice-host >"$work/host.log" 2>&1 &
pids+=($!)
addr=""
for _ in $(seq 1 100); do
    addr="$(sed 's/\x1b\[[0-9;]*m//g' "$work/host.log" | grep -o 'addr=[0-9.]*:[0-9]*' | head -n1 | cut -d= -f2 || true)"
    [[ -n "$addr" ]] && break
    sleep 0.1
done
[[ -n "$addr" ]] || { cat "$work/host.log" >&2; echo "test-browser: voice-host did not start" >&2; exit 1; }
echo "== test-browser: host on $addr"

mkdir -p artifacts
status=0
# Without a token the upgrade is refused before any session starts.
refused="$(curl -s -o /dev/null -w '%{http_code}' -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
    -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' "http://$addr/agent" || true)"
if [[ "$refused" != "401" ]]; then
    echo "test-browser: FAIL /agent without a token answered $refused, expected 401" >&2
    exit 1
fi
echo "ok   /agent without a token is refused with 401"
HOST_URL="http://$addr" SPEECH_WAV="$work/speech16k.wav" CHROMIUM="$CHROMIUM" SESSION_TOKEN="$session_token" \
    EXPECT_TRANSCRIPTS="$ask_weather|$ask_story|$barge_in" STORY="$story" \
    SCREENSHOT="$root/artifacts/browser.png" \
    node tests/browser/browser.test.mjs || status=$?
if ((status != 0)); then
    echo "--- voice-host log (last 40 lines)" >&2
    tail -n 40 "$work/host.log" >&2
fi
exit "$status"
