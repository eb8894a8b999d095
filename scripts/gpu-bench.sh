#!/usr/bin/env bash
# On a GPU machine with PyTorch: builds the model library, `clca` and the CUDA
# tests against the LibTorch inside python3's torch (CLCA_MODELS_ONLY, no
# gRPC), runs the tests, and times ViT-B/16 EViT+CLCA (random weights) with
# `clca bench --device cuda`: fp32, fp16 and bf16, batch 1, 8 and 32, keep
# rates 1.0 and 0.1, at 224 and 448 px; the half precisions also with
# explicit attention products instead of the fused kernels.
#   OUT (default gpu-results), BUILD (default build-gpu), TORCH_DIR (default:
#   python3's torch), DEPS_PREFIX (a prefix holding absl, nlohmann_json, CLI11
#   and GoogleTest where they are not installed), DEVICE (default cuda),
#   SIZES ("224 448"), BATCHES (1,8,32), DTYPES (fp32,fp16,bf16), MIN_SECONDS (1)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-results}
BUILD=${BUILD:-build-gpu}
DEVICE=${DEVICE:-cuda}
SIZES=${SIZES:-224 448}
BATCHES=${BATCHES:-1,8,32}
DTYPES=${DTYPES:-fp32,fp16,bf16}
MIN_SECONDS=${MIN_SECONDS:-1}
mkdir -p "$OUT" "$BUILD"

source scripts/gpu-lib.sh
machine_info "$OUT/machine.txt"

# Shared libraries of DEPS_PREFIX are found at run time (the tests are
# listed by running them during the build) also by the libraries that need them.
if [ -n "${DEPS_PREFIX:-}" ]; then
  export LD_LIBRARY_PATH="$DEPS_PREFIX/lib/x86_64-linux-gnu:$DEPS_PREFIX/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
TORCH_DIR=${TORCH_DIR:-$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')/Torch}
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
start=$(date +%s)
if ! { cmake -S . -B "$BUILD" "${generator[@]}" -DCLCA_MODELS_ONLY=ON -DTorch_DIR="$TORCH_DIR" \
         ${DEPS_PREFIX:+-DCMAKE_PREFIX_PATH="$DEPS_PREFIX"} -DCMAKE_POLICY_VERSION_MINIMUM=3.5 \
         -DTORCH_CUDA_ARCH_LIST="$TORCH_CUDA_ARCH_LIST" &&
       cmake --build "$BUILD" --target clca cuda_test -j "$(nproc)"; } >"$OUT/build.log" 2>&1; then
  grep -E -B2 -A6 "error|CMake Error" "$OUT/build.log" | head -80
  echo "build failed: $OUT/build.log"
  exit 1
fi
echo "built in $(( $(date +%s) - start )) s"

timeout 300 "$BUILD/tests/cuda_test" >"$OUT/cuda_test.log" 2>&1
echo "cuda_test: exit $?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |Failure|error" "$OUT/cuda_test.log" | head -20

for size in $SIZES; do
  config="$BUILD/vitb-clca-$size.json"
  printf '{"model": "evit_vit_base_patch16_%s", "input_size": %s, "num_classes": 200,
 "reduction_loc": [3, 6, 9], "ifa_head": true, "clc": true, "num_clr": 1}\n' "$size" "$size" \
    >"$config"
  for attention in fused matmul; do
    dtypes=$DTYPES
    [ "$attention" = matmul ] && dtypes=$(echo "$DTYPES" | tr , '\n' | grep -v fp32 | paste -sd,)
    [ -n "$dtypes" ] || continue
    timeout 240 "$BUILD/tools/clca" bench --config "$config" --device "$DEVICE" --batch "$BATCHES" \
      --keep-rates 1.0,0.1 --dtype "$dtypes" --attention "$attention" --warmup 3 --repeats 10 \
      --min-seconds "$MIN_SECONDS" --json >"$OUT/bench-$size-$attention.json" 2>"$BUILD/bench.err" ||
      { echo "bench $size $attention failed:"; cat "$BUILD/bench.err"; }
  done
done

# Side by side: timm's ViT-B/16 (no token reduction, fused attention) in
# PyTorch eager mode, where timm is installed, timed the same way.
python3 - "$OUT" "$SIZES" "$BATCHES" "$DTYPES" "$MIN_SECONDS" "$DEVICE" <<'EOF' 2>"$BUILD/timm.err" ||
import json, sys, time
import timm, torch
out, sizes, batches, dtypes, min_seconds, device = sys.argv[1:]
types = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
results = []
for size in map(int, sizes.split()):
    for d in dtypes.split(","):
        model = timm.create_model("vit_base_patch16_224", pretrained=False, img_size=size,
                                  num_classes=200).to(device, types[d]).eval()
        for batch in map(int, batches.split(",")):
            x = torch.randn(batch, 3, size, size, device=device, dtype=types[d])
            times = []
            with torch.inference_mode():
                for _ in range(3):
                    model(x)
                torch.cuda.synchronize()
                end = time.perf_counter() + float(min_seconds)
                while len(times) < 10 or (time.perf_counter() < end and len(times) < 200):
                    start = time.perf_counter()
                    model(x)
                    torch.cuda.synchronize()
                    times.append(time.perf_counter() - start)
            median = sorted(times)[len(times) // 2] / batch
            results.append({"input_size": size, "dtype": d, "batch": batch,
                            "ms_per_image": median * 1e3, "images_per_s": 1 / median})
json.dump({"model": "timm vit_base_patch16_224", "torch": torch.__version__,
           "timm": timm.__version__, "results": results}, open(out + "/timm.json", "w"), indent=1)
EOF
  { echo "timm baseline skipped:"; tail -3 "$BUILD/timm.err"; }

# One line per point: device time per image and throughput.
python3 - "$OUT" <<'EOF'
import glob, json, sys
for path in sorted(glob.glob(sys.argv[1] + "/bench-*.json")):
    try:
        j = json.load(open(path))
    except ValueError:
        continue
    print(f"{j['model']} @{j['input_size']} on {j['device']}, attention {j['attention']}; "
          f"GEMM GFLOP/s {j['gemm_gflops_by_dtype']}")
    print(f"  {'dtype':5} {'batch':>5} {'kr':>4} {'ms/image':>9} {'images/s':>9} {'TFLOP/s':>8} {'of GEMM':>7}")
    for r in j["results"]:
        print(f"  {r['dtype']:5} {r['batch']:5d} {r['keep_rate']:4.1f} {r['ms_per_image']:9.3f} "
              f"{r['images_per_s']:9.0f} {r['gflops'] / 1e3:8.1f} {100 * r['gemm_ratio']:6.0f}%")
try:
    j = json.load(open(sys.argv[1] + "/timm.json"))
except (OSError, ValueError):
    sys.exit(0)
print(f"{j['model']}, torch {j['torch']}, timm {j['timm']}, eager")
for r in j["results"]:
    print(f"  {r['input_size']:4d} {r['dtype']:5} {r['batch']:5d} {r['ms_per_image']:9.3f} "
          f"{r['images_per_s']:9.0f}")
EOF
