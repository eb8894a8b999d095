#!/usr/bin/env bash
# Deadlines under load: ViT-S/16 EViT + CLCA at 224 px (random weights) served
# by clca-server (max_batch_size 8), driven by `clca-client perf` with raw
# pixels. Measures the capacity at keep rate 1.0 (closed loop, 16 callers, no
# deadline), then open-loop Poisson load with 1 s deadlines:
#   fixed keep rate 1.0 at 1.5x and 3x the capacity,
#   adaptive (--min-keep-rate 0.1) at 1.5x and 0.3x the capacity,
# and prints, per run, the answers within their deadline per second
# (goodput) against the capacity, the share of deadlines met, the mean keep
# rate and, for adaptive runs, the share of requests the server ran at keep
# rate 1.0 (from clca_adaptive_keep_rate).
#   OUT (default bench-results/deadlines), BUILD (default build)
#   WINDOW_MS (default 5000): each measurement window; 3 windows per run
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
OUT=${OUT:-bench-results/deadlines}
WINDOW_MS=${WINDOW_MS:-5000}
mkdir -p "$OUT"
source scripts/server-lib.sh
server=""
trap '[ -n "$server" ] && kill -TERM "$server" 2>/dev/null || true' EXIT

vits_clca_config "$OUT/vits-clca-224.json"
demo_repository "$OUT/repo" 0 1 "$(nproc)" "$OUT/vits-clca-224.json" float32 vits
start_server "$OUT/server.log" --model-repository "$OUT/repo" --log-level warn
metrics_port=$(sed -n 's/.*listening .* metrics=[^:]*:\([0-9]*\).*/\1/p' "$OUT/server.log" | head -n 1)

# adaptive_counts: adaptive requests run below keep rate 0.9, and all of them.
adaptive_counts() {
  local metrics
  metrics=$(curl -s "http://127.0.0.1:$metrics_port/metrics")
  local below total
  below=$(echo "$metrics" | sed -n 's/^clca_adaptive_keep_rate_bucket{.*le="0.9".*} \([0-9.e+]*\)$/\1/p' | head -n 1)
  total=$(echo "$metrics" | sed -n 's/^clca_adaptive_keep_rate_count{.*} \([0-9.e+]*\)$/\1/p' | head -n 1)
  echo "${below:-0} ${total:-0}"
}
perf() {
  "$BUILD/client/clca-client" perf --server "$address" --model vits --raw-input \
    --window-ms "$WINDOW_MS" --max-windows 3 --warmup-ms 2000 --json --quiet "$@"
}

perf --keep-rates 1.0 --concurrency 16 --deadline-ms 0 >"$OUT/capacity.json" || true
capacity=$(json_value "$OUT/capacity.json" throughput_per_s)
echo "capacity at keep rate 1.0: $capacity images/s"

run() {
  local name=$1 factor=$2
  shift 2
  local rate
  rate=$(awk "BEGIN {printf \"%.1f\", $capacity * $factor}")
  read -r below_before total_before < <(adaptive_counts)
  perf --request-rate "$rate" --request-distribution poisson --max-threads 256 \
    --deadline-ms 1000 "$@" >"$OUT/$name.json" || true
  read -r below_after total_after < <(adaptive_counts)
  local goodput met keep at_full
  goodput=$(json_value "$OUT/$name.json" goodput_per_s)
  met=$(json_value "$OUT/$name.json" deadline_met_ratio)
  keep=$(json_value "$OUT/$name.json" mean_keep_rate)
  at_full=$(awk "BEGIN {n = $total_after - $total_before;
                        if (n > 0) printf \"%.3f\", 1 - ($below_after - $below_before) / n;
                        else print \"-\"}")
  echo "$name: offered ${rate}/s goodput ${goodput}/s ($(awk "BEGIN {printf \"%.2f\", $goodput / $capacity}") of capacity)" \
       "deadlines met $met mean keep rate $keep adaptive at 1.0: $at_full"
}
run fixed-1.5x 1.5 --keep-rates 1.0
run fixed-3x 3.0 --keep-rates 1.0
run adaptive-1.5x 1.5 --min-keep-rate 0.1
run adaptive-0.3x 0.3 --min-keep-rate 0.1
