#!/usr/bin/env bash
# The GPU checks of CLCA Serve, in one run on a machine with an NVIDIA GPU and
# PyTorch (its LibTorch is what the project builds against):
#   1. builds against python3's torch: everything (clca-server, clca-client,
#      clca, the tests) when the dependency bundle of scripts/gpu-deps.sh is
#      there (gpu-deps/clca-gpu-deps.tar.xz, or DEPS_PREFIX), else the model
#      library, clca and the model tests only;
#   2. tests on CUDA: cuda_test (the reference parity cases, fp32 within
#      1e-4), batch_runner_test (CUDA graphs against eager passes, every
#      method), and with the server built: server_parity_test (the CUDA server
#      against the CPU server) and every server test with
#      CLCA_TEST_SERVER_FLAGS="--device cuda --precision float32";
#   3. clca bench, ViT-B/16 EViT+CLCA (random weights): 224 px fp16 batch 1,
#      eager and with --cuda-graphs; 448 px fp16 at keep rates 1.0 and 0.1,
#      batches 1 to 64, with --cuda-graphs;
#   4. with the server built: clca-server --device cuda (fp16, max_batch_size
#      32, CUDA graphs) at saturation with raw pixels (clca-client perf),
#      against clca bench --cuda-graphs at batch 32 in process.
# Prints one summary and leaves every log and JSON in OUT.
#   OUT (gpu-results), BUILD (build-gpu), TORCH_DIR (python3's torch),
#   DEPS_PREFIX (an unpacked bundle), TORCH_CUDA_ARCH_LIST (9.0),
#   SKIP_SERVER_TESTS=1 (leave out the full server suite on CUDA)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-results}
BUILD=${BUILD:-build-gpu}
mkdir -p "$OUT" "$BUILD"
summary="$OUT/summary.txt"
: >"$summary"
say() { echo "$*" | tee -a "$summary"; }

source scripts/gpu-lib.sh
machine_info "$OUT/machine.txt"

bundle=gpu-deps/clca-gpu-deps.tar.xz
if [ -z "${DEPS_PREFIX:-}" ] && [ -f "$bundle" ]; then
  DEPS_PREFIX=$PWD/$BUILD/deps
  rm -rf "$DEPS_PREFIX" && mkdir -p "$DEPS_PREFIX"
  tar -C "$DEPS_PREFIX" -xJf "$bundle" || { say "cannot unpack $bundle"; exit 1; }
fi
full=0
if [ -n "${DEPS_PREFIX:-}" ] && [ -f "$DEPS_PREFIX/clca-gpu-deps.env" ]; then
  full=1
  # shellcheck disable=SC1091
  source "$DEPS_PREFIX/clca-gpu-deps.env"
fi

TORCH_DIR=${TORCH_DIR:-$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')/Torch}
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
# Abseil 20220623's headers (Debian 12's) miss <cstdint> for GCC 13 and later.
flags=(-DCMAKE_BUILD_TYPE=Release -DTorch_DIR="$TORCH_DIR" -DCMAKE_POLICY_VERSION_MINIMUM=3.5
       -DTORCH_CUDA_ARCH_LIST="$TORCH_CUDA_ARCH_LIST" -DCMAKE_CXX_FLAGS="-include cstdint")
[ -n "${DEPS_PREFIX:-}" ] && flags+=(-DCMAKE_PREFIX_PATH="$DEPS_PREFIX/usr;$DEPS_PREFIX")
targets=(clca cuda_test batch_runner_test)
if [ $full = 1 ]; then
  targets+=(clca-server clca-client server_parity_test)
  [ "${SKIP_SERVER_TESTS:-0}" = 1 ] || targets=(all)
else
  flags+=(-DCLCA_MODELS_ONLY=ON)
  say "no dependency bundle ($bundle or DEPS_PREFIX): the model library only, no server"
fi
start=$(date +%s)
if ! { cmake -S . -B "$BUILD" "${generator[@]}" "${flags[@]}" &&
       cmake --build "$BUILD" --target "${targets[@]}" -j "$(nproc)"; } >"$OUT/build.log" 2>&1; then
  grep -E -B2 -A6 "error|CMake Error" "$OUT/build.log" | head -80
  say "build failed: $OUT/build.log"
  exit 1
fi
say "built (${targets[*]}) in $(( $(date +%s) - start )) s"

failures=0
run_test() {  # NAME COMMAND...: runs a test program, records PASS/FAIL
  local name=$1
  shift
  if timeout 900 "$@" >"$OUT/$name.log" 2>&1; then
    say "$name: passed ($(grep -c '^\[       OK \]' "$OUT/$name.log") ok, $(grep -c '^\[  SKIPPED \]' "$OUT/$name.log") skipped)"
  else
    say "$name: FAILED (exit $?), see $OUT/$name.log"
    grep -E "^\[  FAILED  \]|Failure" "$OUT/$name.log" | head -20 | tee -a "$summary"
    failures=$((failures + 1))
  fi
}
run_test cuda_test "$BUILD/tests/cuda_test"
run_test batch_runner_test "$BUILD/tests/batch_runner_test"
if [ $full = 1 ]; then
  run_test server_parity_test "$BUILD/tests/server_parity_test"
  if [ "${SKIP_SERVER_TESTS:-0}" != 1 ]; then
    if CLCA_TEST_SERVER_FLAGS="--device cuda --precision float32" \
       ctest --test-dir "$BUILD" -L server -j 4 --timeout 600 >"$OUT/server-tests-cuda.log" 2>&1; then
      say "server tests on CUDA: $(grep -E 'tests passed' "$OUT/server-tests-cuda.log")"
    else
      say "server tests on CUDA: $(grep -E 'tests passed' "$OUT/server-tests-cuda.log"), see $OUT/server-tests-cuda.log"
      grep -E "^\s+[0-9]+ - " "$OUT/server-tests-cuda.log" | tee -a "$summary"
      failures=$((failures + 1))
    fi
  fi
fi

# ViT-B/16 EViT+CLCA, 200 classes, at 224 and 448 px.
for size in 224 448; do
  printf '{"model": "evit_vit_base_patch16_%s", "input_size": %s, "num_classes": 200,
 "reduction_loc": [3, 6, 9], "ifa_head": true, "clc": true, "num_clr": 1}\n' "$size" "$size" \
    >"$BUILD/vitb-clca-$size.json"
done
bench() {  # NAME ARGS...: clca bench --json into OUT/NAME.json
  local name=$1
  shift
  timeout 300 "$BUILD/tools/clca" bench --device cuda --warmup 5 --repeats 20 --min-seconds 1 \
    --json "$@" >"$OUT/$name.json" 2>"$OUT/$name.err" || say "bench $name failed: $(tail -3 "$OUT/$name.err")"
}
bench b1-224-eager --config "$BUILD/vitb-clca-224.json" --batch 1 --keep-rates 1.0,0.1 --dtype fp16
bench b1-224-graphs --config "$BUILD/vitb-clca-224.json" --batch 1 --keep-rates 1.0,0.1 --dtype fp16 --cuda-graphs
bench batches-448-graphs --config "$BUILD/vitb-clca-448.json" --batch 1,2,4,8,16,32,64 \
  --keep-rates 1.0,0.1 --dtype fp16 --cuda-graphs
bench batches-448-eager --config "$BUILD/vitb-clca-448.json" --batch 1,8,32 \
  --keep-rates 1.0,0.1 --dtype fp16
bench b32-224-graphs --config "$BUILD/vitb-clca-224.json" --batch 32 --keep-rates 1.0,0.1 --dtype fp16 --cuda-graphs

served=""
if [ $full = 1 ]; then
  source scripts/server-lib.sh
  repo="$OUT/repo"
  version="$repo/vitb-clca-224/1"
  rm -rf "$repo" && mkdir -p "$version"
  cp "$BUILD/vitb-clca-224.json" "$version/model.json"
  "$BUILD/tools/clca" init --config "$version/model.json" --output "$version/model.pth" >/dev/null
  seq -f "class-%g" 0 199 >"$version/labels.txt"
  cat >"$version/serving.json" <<'JSON'
{"max_batch_size": 32, "max_queue_delay_us": 2000, "queue_capacity": 1024, "workers": 2,
 "keep_rate": {"default": 1.0, "min": 0.1, "max": 1.0}, "precision": "float16",
 "warmup": {"keep_rates": [1.0, 0.1]}}
JSON
  if start_server "$OUT/server.log" --model-repository "$repo" --device cuda --preprocess-threads 8; then
    for kr in 1.0 0.1; do
      "$BUILD/client/clca-client" perf --server "$address" --model vitb-clca-224 --raw-input \
        --keep-rates "$kr" --concurrency 128 --warmup-ms 3000 --window-ms 3000 --max-windows 3 \
        --json --quiet >"$OUT/served-kr$kr.json" 2>"$OUT/served-kr$kr.err" ||
        say "served kr $kr failed: $(tail -3 "$OUT/served-kr$kr.err")"
      served+=" $kr:$(sed -n 's/.*"throughput_per_s":\([0-9.]*\).*/\1/p' "$OUT/served-kr$kr.json")"
    done
    kill -TERM "$server"
    wait "$server" 2>/dev/null
  else
    say "clca-server --device cuda did not start: $OUT/server.log"
    failures=$((failures + 1))
  fi
fi

python3 - "$OUT" "$served" <<'EOF' | tee -a "$summary"
import json, sys
out, served = sys.argv[1], sys.argv[2]
def rows(name):
    try:
        return json.load(open(f"{out}/{name}.json"))["results"]
    except (OSError, ValueError, KeyError):
        return []
def ms(name, batch, kr):
    for r in rows(name):
        if r["batch"] == batch and abs(r["keep_rate"] - kr) < 1e-9:
            return r["ms_per_image"]
    return None
for name in ("b1-224-eager", "b1-224-graphs"):
    print(f"ViT-B/16 @224 fp16 batch 1 ({name[7:]}): kr 1.0 {ms(name, 1, 1.0)} ms, kr 0.1 {ms(name, 1, 0.1)} ms"
          "  [target with graphs: <= 1.0 ms]")
print("ViT-B/16 @448 fp16 with graphs, ms per image (kr 1.0 / kr 0.1 = speed-up):")
for batch in (1, 2, 4, 8, 16, 32, 64):
    a, b = ms("batches-448-graphs", batch, 1.0), ms("batches-448-graphs", batch, 0.1)
    ratio = f"{a / b:.2f}x" if a and b else "-"
    print(f"  batch {batch:2d}: {a} / {b} = {ratio}")
print("  [targets: kr 0.1 at least as fast at every batch; >= 2.5x at batch 32]")
if served.strip():
    for item in served.split():
        kr, ips = item.split(":")
        inproc = ms("b32-224-graphs", 32, float(kr))
        if ips and inproc:
            ratio = float(ips) / (1e3 / inproc)
            print(f"served @224 fp16 kr {kr}: {float(ips):.0f} images/s, in process (batch 32, graphs) "
                  f"{1e3 / inproc:.0f}: {ratio:.2f}  [target >= 0.9]")
        else:
            print(f"served @224 fp16 kr {kr}: {ips or 'no result'}")
EOF
say "failures: $failures"
[ "$failures" = 0 ]
