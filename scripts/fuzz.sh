#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers (fuzz/, cargo-fuzz + libFuzzer; fuzz/README.md).
#   scripts/fuzz.sh [seconds-per-target] [target...]
# Each target first replays its seed corpus (fuzz/corpus/<target>, read-only here) and the
# inputs earlier runs found (fuzz/target/corpus/<target>, not committed), then fuzzes for the
# given time (default 60 s), one target at a time. A crash stops the script with libFuzzer's
# report; the input is saved in fuzz/artifacts/<target>/. Needs cargo-fuzz and the nightly
# toolchain (scripts/test.sh installs both when missing).
# Environment: FUZZ_JOBS (cargo build jobs, default 2), FUZZ_SANITIZER (default none: the
# targets are safe Rust except dataplane's packet buffer; `address` finds more, runs slower).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
san="${FUZZ_SANITIZER:-none}"
export CARGO_BUILD_JOBS="${FUZZ_JOBS:-2}"
mkdir -p target
if ! cargo +nightly fuzz build -s "$san" >target/fuzz-build.log 2>&1; then
  tail -n 40 target/fuzz-build.log
  exit 1
fi
summary=()
for t in "${targets[@]}"; do
  work="target/corpus/$t"
  mkdir -p "$work" "artifacts/$t"
  log="target/fuzz-$t.log"
  echo "-- $t: replay corpus/$t ($(ls "corpus/$t" | wc -l) seeds), then ${secs} s"
  if ! cargo +nightly fuzz run -s "$san" "$t" "$work" "corpus/$t" -- \
      -max_total_time="$secs" -print_final_stats=1 -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
      >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "FUZZ FAILURE in $t (log fuzz/$log, input in fuzz/artifacts/$t/)" >&2
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -ao 'cov: [0-9]*' "$log" | tail -1)
  summary+=("$t: ${runs:-?} executions clean in ${secs} s (${cov:-cov: ?})")
  echo "   ${summary[-1]}"
done
echo "== fuzz summary"
printf '  %s\n' "${summary[@]}"
