#!/usr/bin/env bash
# The batching and request-pipeline tests built with ThreadSanitizer (Clang)
# and run: batch_scheduler_test, clock_test and server_pipeline_test. Exits
# non-zero on a failed test or any data race, lock-order or thread-leak
# report. sanitizers/tsan.supp holds the reports that are not ours, each
# explained.
#
#   tsan.sh [GTEST_ARGS...]      e.g. tsan.sh --gtest_repeat=5
#
# Environment: CLCA_TSAN_BUILD_DIR (build-tsan).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/sanitizer-lib.sh

dir=${CLCA_TSAN_BUILD_DIR:-build-tsan}
tests=(batch_scheduler_test clock_test server_pipeline_test)
configure_sanitizer_tree "$dir" thread -DCLCA_BUILD_TESTS=ON
if ! cmake --build "$dir" -j"$(nproc)" --target "${tests[@]}" >"$dir/tsan-build.log" 2>&1; then
  tail -n 50 "$dir/tsan-build.log" >&2
  echo "tsan.sh: build failed (log: $dir/tsan-build.log)" >&2
  exit 1
fi

export TSAN_OPTIONS=${TSAN_OPTIONS:-suppressions=$PWD/sanitizers/tsan.supp:second_deadlock_stack=1:print_suppressions=0}
failed=0
for test in "${tests[@]}"; do
  log=$dir/tsan-$test.log
  # TSan exits 66 after the tests when it reported anything.
  if timeout 900 "$dir/tests/$test" --gtest_brief=1 "$@" >"$log" 2>&1; then
    echo "$test: passed, no ThreadSanitizer report"
  else
    reports=$(grep -c '^WARNING: ThreadSanitizer' "$log" || true)
    echo "$test: FAILED ($reports ThreadSanitizer reports; log: $log)"
    grep -m 3 -A 12 '^WARNING: ThreadSanitizer' "$log" || tail -n 30 "$log"
    failed=1
  fi
done
exit $failed
