#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds with warnings as
# errors, and runs every test with CTest. Then the sanitizer smoke runs
# (docs/SECURITY.md#fuzzing-and-sanitizers): the file and image parsers'
# unit tests and seed corpora, and the server tests of hostile input against
# a sanitized clca-server, under AddressSanitizer and
# UndefinedBehaviorSanitizer, then each of the parsers' fuzz targets for
# CLCA_FUZZ_SECONDS seconds (default 10). CLCA_SKIP_SANITIZERS=1 leaves those
# out, for fast local loops; CI runs them. The complete sanitizer runs are
# scripts/sanitize.sh (every unit and server test), scripts/fuzz.sh (every
# target) and scripts/tsan.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh -DCLCA_WERROR=ON -DCLCA_BUILD_TESTS=ON
ctest --test-dir "${CLCA_BUILD_DIR:-build}" --output-on-failure -j"$(nproc)"
if [ "${CLCA_SKIP_SANITIZERS:-0}" = 1 ]; then
  echo "run-tests: sanitizer tests and fuzzing skipped (CLCA_SKIP_SANITIZERS=1)"
  exit 0
fi
source scripts/sanitizer-lib.sh
./scripts/sanitize.sh --smoke
./scripts/fuzz.sh "${CLCA_FUZZ_SECONDS:-10}" "${SMOKE_FUZZ_TARGETS[@]}"
