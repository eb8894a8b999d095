#!/usr/bin/env bash
# The unit and server tests built with AddressSanitizer and
# UndefinedBehaviorSanitizer (Clang) and run with CTest (labels unit and
# server), and every fuzz target once over its seed corpus (label fuzz).
# Exits non-zero on a failed test or any sanitizer report.
#
#   sanitize.sh [--smoke] [CTEST_ARGS...]      e.g. sanitize.sh -R Checkpoint
#
# Only the tests of code that parses input, manages memory by hand or runs
# threads are built, with what they link; the offline tools' tests (the clca
# command, dataset generation and reading, training) and the CUDA test are
# left to the regular build.
#
# --smoke (what CI runs, within its time budget): the parsers of files and
# images, their unit tests and their fuzz targets' seed corpora, and the
# server tests of hostile input (untrusted strings and limits, image bombs,
# malformed repositories and failing batches) against a sanitized
# clca-server.
#
# Environment: CLCA_ASAN_BUILD_DIR (build-asan), shared with fuzz.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/sanitizer-lib.sh

smoke=0
if [ "${1:-}" = --smoke ]; then
  smoke=1
  shift
fi
if [ $smoke = 1 ]; then
  tests=(checkpoint_test config_test preprocess_test hostile_images_test jpeg_color_test
         server_untrusted_input_test server_hostile_images_test server_errors_test)
  programs=(clca-server clca-client "${SMOKE_FUZZ_TARGETS[@]}")
else
  tests=(
    # models/: checkpoints, configurations, kernels on raw pointers, the model
    checkpoint_test config_test cost_test cpu_kernels_test onednn_test threads_test
    model_test reducers_test parity_test batch_runner_test
    # image decoding and preprocessing
    preprocess_test hostile_images_test jpeg_color_test
    # batching, the client library, the server end to end
    batch_scheduler_test clock_test compute_time_model_test
    client_model_control_test client_perf_report_test client_perf_run_test
    client_perf_stats_test client_perf_test client_security_test
    server_adaptive_keep_rate_test server_batching_test server_classify_test
    server_client_cli_test server_errors_test server_health_reflection_test
    server_hostile_images_test server_lifecycle_test server_memory_limits_test
    server_metrics_test server_parity_test server_perf_cli_test server_pipeline_test
    server_queue_limits_test server_security_test server_shutdown_test
    server_untrusted_input_test serving_config_test
  )
  # The programs the server tests start, and the fuzz targets.
  programs=(clca-server clca-client "${FUZZ_TARGETS[@]}")
fi

configure_asan_tree
if ! cmake --build "$ASAN_BUILD" -j"$(nproc)" --target "${tests[@]}" "${programs[@]}" \
     >"$ASAN_BUILD/sanitize-build.log" 2>&1; then
  tail -n 50 "$ASAN_BUILD/sanitize-build.log" >&2
  echo "sanitize.sh: build failed (log: $ASAN_BUILD/sanitize-build.log)" >&2
  exit 1
fi
# Tests of programs not built above are listed as *_NOT_BUILT: leave them out,
# and the seed corpora of fuzz targets not built.
exclude='_NOT_BUILT$|^layout_dependencies$|^cuda_sources_compile$'
for name in $(ctest --test-dir "$ASAN_BUILD" -N -L unit | sed -n 's/^ *Test *#[0-9]*: \([a-z_]*_test\)$/\1/p'); do
  [ -x "$ASAN_BUILD/tests/$name" ] || exclude+="|^$name\$"
done
for target in "${FUZZ_TARGETS[@]}"; do
  [[ " ${programs[*]} " == *" $target "* ]] || exclude+="|^${target}_corpus\$"
done
ctest --test-dir "$ASAN_BUILD" -L 'unit|server|fuzz' -E "$exclude" --output-on-failure \
      -j"$(nproc)" "$@"
