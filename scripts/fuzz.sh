#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with AddressSanitizer and
# UndefinedBehaviorSanitizer (Clang), runs each for SECONDS (default 60) from
# its seed corpus, one after another, and prints one line per target with its
# executions. Exits 1 on any crash, leak, out-of-memory or hang (an input
# running longer than the timeout); their inputs are kept in the build tree.
#
#   fuzz.sh [SECONDS] [TARGET...]
#
# Environment:
#   CLCA_FUZZ_RUNS       also stop a target after this many executions
#   CLCA_FUZZ_TIMEOUT    seconds one input may run before it is a hang (10)
#   CLCA_FUZZ_RSS_MB     memory limit of a target, LibTorch included (2048)
#   CLCA_ASAN_BUILD_DIR  the build tree (build-asan), shared with sanitize.sh
# Inputs found interesting are kept in $CLCA_ASAN_BUILD_DIR/fuzz-corpus/<target>
# (the seeds in fuzz/corpus are only read), crash, leak, oom and timeout inputs
# in $CLCA_ASAN_BUILD_DIR/fuzz-artifacts/<target>, logs beside them.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/sanitizer-lib.sh

seconds=${1:-60}
shift || true
if ! [[ $seconds =~ ^[0-9]+$ ]]; then
  echo "usage: fuzz.sh [SECONDS] [TARGET...]" >&2
  exit 2
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=("${FUZZ_TARGETS[@]}")
fi
timeout=${CLCA_FUZZ_TIMEOUT:-10}
rss_mb=${CLCA_FUZZ_RSS_MB:-2048}

configure_asan_tree || exit 1
if ! cmake --build "$ASAN_BUILD" -j"$(nproc)" --target "${targets[@]}" >"$ASAN_BUILD/fuzz-build.log" 2>&1; then
  tail -n 50 "$ASAN_BUILD/fuzz-build.log" >&2
  echo "fuzz.sh: build failed (log: $ASAN_BUILD/fuzz-build.log)" >&2
  exit 1
fi

# The libFuzzer flags of fuzz/<target>.options ("key = value" lines).
options_of() {
  local file=fuzz/$1.options
  [ -f "$file" ] || return 0
  sed -n 's/^[[:space:]]*\([a-z_]*\)[[:space:]]*=[[:space:]]*\([^[:space:]]*\).*/-\1=\2/p' "$file"
}

failed=0
for target in "${targets[@]}"; do
  work=$ASAN_BUILD/fuzz-corpus/$target
  artifacts=$ASAN_BUILD/fuzz-artifacts/$target
  log=$ASAN_BUILD/fuzz-artifacts/$target.log
  mkdir -p "$work" "$artifacts"
  flags=(-max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb="$rss_mb"
         -artifact_prefix="$artifacts/" -print_final_stats=1)
  mapfile -t from_file < <(options_of "$target")
  flags+=("${from_file[@]}")
  [ -f "fuzz/dict/$target.dict" ] && flags+=(-dict="fuzz/dict/$target.dict")
  [ -n "${CLCA_FUZZ_RUNS:-}" ] && flags+=(-runs="$CLCA_FUZZ_RUNS")
  start=$(date +%s)
  "$ASAN_BUILD/fuzz/$target" "${flags[@]}" "$work" "fuzz/corpus/$target" >"$log" 2>&1
  rc=$?
  elapsed=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
  if [ -z "$execs" ]; then
    # Without final stats (a crash), the last status line has the count.
    execs=$(sed -n 's/^#\([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)
  fi
  input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
  if [ "$rc" -eq 0 ] && [ -z "$input" ]; then
    echo "$target: ${execs:-0} execs in $elapsed s, no crash"
  else
    what=$(grep -m 1 -oE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer): [a-z-]*|runtime error: .*|ALARM: .*|==[0-9]+== ERROR: .*' "$log" ||
           echo "exit code $rc")
    echo "$target: FAILED after ${execs:-0} execs in $elapsed s: $what (input: ${input:-none}, log: $log)"
    failed=1
  fi
done
exit $failed
