#!/usr/bin/env bash
# The unit and server tests built with AddressSanitizer and
# UndefinedBehaviorSanitizer (Clang) and run with CTest (labels unit and
# server), and every fuzz target once over its seed corpus (label fuzz).
# Exits non-zero on a failed test or any sanitizer report.
#
#   sanitize.sh [CTEST_ARGS...]      e.g. sanitize.sh -R Checkpoint
#
# Only the tests of code that parses input, manages memory by hand or runs
# threads are built, with what they link; the offline tools' tests (the clca
# command, dataset generation and reading, training) and the CUDA test are
# left to the regular build. Environment: CLCA_ASAN_BUILD_DIR (build-asan),
# shared with fuzz.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/sanitizer-lib.sh

tests=(
  # models/: checkpoints, configurations, kernels on raw pointers, the model
  checkpoint_test config_test cost_test cpu_kernels_test onednn_test threads_test
  model_test reducers_test parity_test
  # image decoding and preprocessing
  preprocess_test
  # batching, the client library, the server end to end
  batch_scheduler_test clock_test
  client_model_control_test client_perf_report_test client_perf_run_test
  client_perf_stats_test client_perf_test client_security_test
  server_batching_test server_classify_test server_client_cli_test server_errors_test
  server_health_reflection_test server_metrics_test server_parity_test
  server_perf_cli_test server_pipeline_test server_queue_limits_test server_shutdown_test
  serving_config_test
)
# The programs the server tests start, and the fuzz targets.
programs=(clca-server clca-client fuzz_image fuzz_pickle fuzz_checkpoint fuzz_safetensors
          fuzz_model_config fuzz_serving_config fuzz_request)

configure_asan_tree
if ! cmake --build "$ASAN_BUILD" -j"$(nproc)" --target "${tests[@]}" "${programs[@]}" \
     >"$ASAN_BUILD/sanitize-build.log" 2>&1; then
  tail -n 50 "$ASAN_BUILD/sanitize-build.log" >&2
  echo "sanitize.sh: build failed (log: $ASAN_BUILD/sanitize-build.log)" >&2
  exit 1
fi
# Tests of programs not built above are listed as *_NOT_BUILT: leave them out.
ctest --test-dir "$ASAN_BUILD" -L 'unit|server|fuzz' -E '_NOT_BUILT$' --output-on-failure \
      -j"$(nproc)" --timeout 900 "$@"
