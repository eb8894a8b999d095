#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds with warnings as
# errors, and runs every test with CTest. Then the sanitizer builds
# (docs/SECURITY.md#fuzzing-and-sanitizers): the unit and server tests under
# AddressSanitizer and UndefinedBehaviorSanitizer, and each fuzz target for
# CLCA_FUZZ_SECONDS seconds (default 20). CLCA_SKIP_SANITIZERS=1 leaves those
# out, for fast local loops; CI runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh -DCLCA_WERROR=ON -DCLCA_BUILD_TESTS=ON
ctest --test-dir "${CLCA_BUILD_DIR:-build}" --output-on-failure -j"$(nproc)" --timeout 900
if [ "${CLCA_SKIP_SANITIZERS:-0}" = 1 ]; then
  echo "run-tests: sanitizer tests and fuzzing skipped (CLCA_SKIP_SANITIZERS=1)"
  exit 0
fi
./scripts/sanitize.sh
./scripts/fuzz.sh "${CLCA_FUZZ_SECONDS:-20}"
