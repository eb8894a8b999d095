# Sourced by fuzz.sh, sanitize.sh and tsan.sh: the sanitizer build trees.

# configure_sanitizer_tree DIR SANITIZE [CMAKE_ARGS...]: configures DIR with
# Clang and -DCLCA_SANITIZE=SANITIZE. The project's code is compiled at -O1
# with line tables (readable stacks, fuzzers fast enough), <torch/torch.h> is
# precompiled once, and the model library's own OpenMP is off: Clang's OpenMP
# runtime would sit beside LibTorch's libgomp in one process.
configure_sanitizer_tree() {
  local dir=$1 sanitize=$2
  shift 2
  local launcher=()
  if command -v ccache >/dev/null; then
    launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
    # ccache refuses precompiled headers unless told that their macros and
    # timestamps are safe to ignore.
    export CCACHE_SLOPPINESS=${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}
  fi
  CC=clang CXX=clang++ cmake -S . -B "$dir" \
    -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -gline-tables-only -DNDEBUG" \
    -DCLCA_SANITIZE="$sanitize" -DCLCA_PCH=ON -DCLCA_WITH_OPENMP=OFF \
    "${launcher[@]}" "$@" >/dev/null
}

# The ASan + UBSan tree holds both the fuzz targets and the sanitized tests:
# one build serves fuzz.sh and sanitize.sh.
ASAN_BUILD=${CLCA_ASAN_BUILD_DIR:-build-asan}
configure_asan_tree() {
  configure_sanitizer_tree "$ASAN_BUILD" address,undefined -DCLCA_FUZZ=ON -DCLCA_BUILD_TESTS=ON
}

# Runtime options: leaks checked at exit, stacks printed, the leak reports
# that are not ours suppressed (sanitizers/lsan.supp explains each).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/sanitizers/lsan.supp:print_suppressions=0}

# Every fuzz target, and those CI runs (the parsers of files and images,
# which need only the model library).
FUZZ_TARGETS=(fuzz_image fuzz_pickle fuzz_checkpoint fuzz_safetensors fuzz_model_config
              fuzz_serving_config fuzz_request)
SMOKE_FUZZ_TARGETS=(fuzz_image fuzz_pickle fuzz_checkpoint fuzz_safetensors fuzz_model_config)
