#!/usr/bin/env bash
# Reproduces the tables of docs/BENCHMARKS.md: in-process timings of ViT-B/16
# EViT+CLCA (random weights) with `clca bench`, and clca-server measured with
# `clca-client perf` against the same model in process. Run it on an idle
# machine after ./scripts/build.sh; results go to $OUT (default bench-results/).
#   THREADS (default: all cores), OUT, BUILD (default build)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
OUT=${OUT:-bench-results}
THREADS=${THREADS:-$(nproc)}
mkdir -p "$OUT"
CLCA="$BUILD/tools/clca"
# The process settings the figures were measured with (see the doc); set one
# to empty (e.g. GOMP_SPINCOUNT=) to measure without it.
source scripts/process-env.sh
source scripts/server-lib.sh

cat >"$OUT/vitb-clca-448.json" <<'EOF'
{"model": "evit_vit_base_patch16_448", "input_size": 448, "num_classes": 200,
 "reduction_loc": [3, 6, 9], "ifa_head": true, "clc": true, "num_clr": 1}
EOF
sed 's/448/224/g' "$OUT/vitb-clca-448.json" >"$OUT/vitb-clca-224.json"

echo "== ViT-B/16 EViT+CLCA @448, batch 8, fp32 and bf16, keep rates 1.0 and 0.1"
"$CLCA" bench --config "$OUT/vitb-clca-448.json" --batch 8 --keep-rates 1.0,0.1 \
  --dtype fp32,bf16 --threads "$THREADS" --repeats 3 --min-seconds 2 --json \
  | tee "$OUT/bench-448-b8.json"

echo "== ViT-B/16 EViT+CLCA @224, batch 1, fp32, keep rate 1.0"
"$CLCA" bench --config "$OUT/vitb-clca-224.json" --batch 1 --keep-rates 1.0 \
  --dtype fp32 --threads "$THREADS" --repeats 10 --min-seconds 2 --json \
  | tee "$OUT/bench-224-b1.json"

echo "== The demo model in process, batch 1 and 8, keep rates 1.0 and 0.1"
DEMO=deploy/model-repository/clca-demo/1
"$CLCA" bench --config "$DEMO/model.json" --batch 1,8 --keep-rates 1.0,0.1 --dtype fp32 \
  --threads "$THREADS" --repeats 10 --min-seconds 2 --json | tee "$OUT/bench-demo.json"
echo "== The same, $THREADS single-threaded streams side by side"
"$CLCA" bench --config "$DEMO/model.json" --batch 1,8 --keep-rates 1.0,0.1 --dtype fp32 \
  --streams "$THREADS" --threads 1 --repeats 10 --min-seconds 2 --json \
  | tee "$OUT/bench-demo-streams.json"

echo "== clca-server + clca-client perf on the demo model"
# max_queue_delay_us, workers and intra-op threads of each: one worker on
# every core, with and without a queue delay, and one single-threaded worker
# per core.
for setting in "0 1 $THREADS" "2000 1 $THREADS" "0 $THREADS 1"; do
  read -r delay workers threads <<<"$setting"
  name="delay-$delay-${workers}x$threads"
  repo="$OUT/repo-$name"
  demo_repository "$repo" "$delay" "$workers" "$threads"
  start_server "$OUT/server-$name.log" --model-repository "$repo"
  for kr in 1.0 0.1; do
    "$BUILD/client/clca-client" perf --server "$address" --model clca-demo \
      --image deploy/samples/leaf_300x300.png --keep-rates "$kr" --concurrency 1,4,16,32 \
      --window-ms 2000 --max-windows 5 --json --quiet | tee "$OUT/perf-$name-kr$kr.json"
    # Raw pixels of the input size: the server without decoding and resizing.
    "$BUILD/client/clca-client" perf --server "$address" --model clca-demo --raw-input \
      --keep-rates "$kr" --concurrency 1,4,16,32 --window-ms 2000 --max-windows 5 --json \
      --quiet | tee "$OUT/perf-raw-$name-kr$kr.json"
  done
  kill -TERM "$server"
  wait "$server" || true
done

echo "== clca-server + clca-client perf on ViT-B/16 EViT+CLCA @224 (random weights)"
# Low load: one worker on every core, one request at a time.
vitb_repo="$OUT/repo-vitb"
demo_repository "$vitb_repo" 0 1 "$THREADS" "$OUT/vitb-clca-224.json" float32 vitb-clca-224
start_server "$OUT/server-vitb.log" --model-repository "$vitb_repo"
for kr in 1.0 0.1; do
  "$BUILD/client/clca-client" perf --server "$address" --model vitb-clca-224 \
    --image deploy/samples/leaf_300x300.png --keep-rates "$kr" --concurrency 1 \
    --window-ms 5000 --max-windows 3 --json --quiet | tee "$OUT/perf-vitb-kr$kr.json"
  "$BUILD/client/clca-client" perf --server "$address" --model vitb-clca-224 --raw-input \
    --keep-rates "$kr" --concurrency 1 --window-ms 5000 --max-windows 3 --json --quiet \
    | tee "$OUT/perf-raw-vitb-kr$kr.json"
done
kill -TERM "$server"
wait "$server" || true
# Saturation, served against the same worker layout in process, alternating.
OUT="$OUT/serving-vitb" BUILD="$BUILD" CONFIG="$OUT/vitb-clca-224.json" WINDOW_MS=8000 \
  INPUTS="raw encoded" scripts/bench-serving.sh
