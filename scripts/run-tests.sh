#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds with warnings as
# errors, and runs every test with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh -DCLCA_WERROR=ON -DCLCA_BUILD_TESTS=ON
ctest --test-dir "${CLCA_BUILD_DIR:-build}" --output-on-failure -j"$(nproc)" --timeout 900
