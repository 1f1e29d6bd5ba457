#!/usr/bin/env bash
# Fuzzes the host's parsers of outside input (targets in fuzz/fuzz_targets) for SECONDS each.
#
#   scripts/fuzz.sh SECONDS [TARGET...]     # all targets when none are named
#
# Installs the nightly toolchain and cargo-fuzz when missing (the project itself stays on stable).
# New inputs the fuzzer finds go to a scratch directory; fuzz/corpus/<target> (the seeds the
# ordinary tests replay) is only read. Crashing inputs land in fuzz/artifacts/<target>/.
# Prints executions, time and crashes per target; exits non-zero when any target crashed.
# FUZZ_SANITIZER picks the sanitizer (default none: the targets look for panics, and the code
# under test is safe Rust apart from its dependencies).
set -euo pipefail

if [[ $# -lt 1 || ! $1 =~ ^[0-9]+$ ]]; then
  echo "usage: $0 SECONDS [TARGET...]" >&2
  exit 2
fi
seconds=$1
shift
sanitizer=${FUZZ_SANITIZER:-none}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/fuzz"

if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
cargo +nightly fuzz build -s "$sanitizer"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=0
printf '%-20s %8s %12s %8s\n' target seconds executions crashes
for target in "${targets[@]}"; do
  mkdir -p "$scratch/$target" "artifacts/$target"
  before=$(find "artifacts/$target" -type f | wc -l)
  log="$scratch/$target.log"
  start=$(date +%s)
  status=0
  cargo +nightly fuzz run -s "$sanitizer" "$target" "$scratch/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    >"$log" 2>&1 || status=$?
  elapsed=$(($(date +%s) - start))
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  crashes=$(($(find "artifacts/$target" -type f | wc -l) - before))
  if [[ $status -ne 0 && $crashes -eq 0 ]]; then
    crashes="?"  # failed without an artifact (e.g. a build error): the log says why
  fi
  printf '%-20s %8s %12s %8s\n' "$target" "$elapsed" "${runs:-?}" "$crashes"
  if [[ $status -ne 0 ]]; then
    failed=1
    grep -m 20 -E 'panicked|ERROR|SUMMARY|Test unit written|error' "$log" | sed 's/^/    /' || true
  fi
done
exit "$failed"
