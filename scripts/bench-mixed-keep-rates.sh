#!/usr/bin/env bash
# Per-request keep rates: ViT-S/16 EViT + CLCA at 224 px (random weights)
# served by clca-server (max_batch_size 8), 16 closed-loop callers of
# `clca-client perf` with raw pixels. Each round measures, in turn:
#   fixed keep rate 1.0 and fixed keep rate 0.55 (the mean of the mix),
#   keep rates drawn uniformly from 0.10, 0.15, ..., 1.00 per request, on a
#   version that batches by keep rate ("mix_keep_rates": false) and on one
#   that runs mixed batches ("mix_keep_rates": true),
# and prints the GMAC/s the answers report and the mean batch size.
#   OUT (default bench-results/mixed), BUILD (default build)
#   ROUNDS (default 2), WINDOW_MS (default 5000): 3 windows per run
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
OUT=${OUT:-bench-results/mixed}
ROUNDS=${ROUNDS:-2}
WINDOW_MS=${WINDOW_MS:-5000}
mkdir -p "$OUT"
source scripts/server-lib.sh
server=""
trap '[ -n "$server" ] && kill -TERM "$server" 2>/dev/null || true' EXIT

vits_clca_config "$OUT/vits-clca-224.json"
demo_repository "$OUT/repo" 2000 1 "$(nproc)" "$OUT/vits-clca-224.json" float32 grouped
cp -r "$OUT/repo/grouped" "$OUT/repo/mixed"
for name in grouped mixed; do
  mix=false
  [ "$name" = mixed ] && mix=true
  sed -i "s/\"precision\"/\"mix_keep_rates\": $mix, \"precision\"/" "$OUT/repo/$name/1/serving.json"
done
start_server "$OUT/server.log" --model-repository "$OUT/repo" --log-level warn

uniform=$(seq -f "%.2f" 0.10 0.05 1.00 | paste -sd, -)
results="$OUT/results.txt"
: >"$results"
run() {
  local name=$1 model=$2
  shift 2
  "$BUILD/client/clca-client" perf --server "$address" --model "$model" --raw-input \
    --concurrency 16 --window-ms "$WINDOW_MS" --max-windows 3 --warmup-ms 2000 --json --quiet \
    "$@" >"$OUT/$name-$round.json" || true
  echo "round $round $name gmacs_per_s $(json_value "$OUT/$name-$round.json" gmacs_per_s)" \
       "images_per_s $(json_value "$OUT/$name-$round.json" throughput_per_s)" \
       "mean_batch $(json_value "$OUT/$name-$round.json" mean_batch_size)" | tee -a "$results"
}
for round in $(seq 1 "$ROUNDS"); do
  run fixed-1.0 grouped --keep-rates 1.0
  run fixed-0.55 grouped --keep-rates 0.55
  run uniform-grouped grouped --keep-rates "$uniform"
  run uniform-mixed mixed --keep-rates "$uniform"
done
# Ratios of the medians over rounds.
median() {
  grep " $1 " "$results" | awk -v k="$2" '{for (i = 1; i < NF; ++i) if ($i == k) print $(i + 1)}' |
    sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
for name in uniform-grouped uniform-mixed; do
  awk -v n="$name" -v g="$(median "$name" gmacs_per_s)" -v f1="$(median fixed-1.0 gmacs_per_s)" \
      -v f55="$(median fixed-0.55 gmacs_per_s)" -v b="$(median "$name" mean_batch)" \
      -v fb="$(median fixed-1.0 mean_batch)" \
      'BEGIN {printf "%s: %.2f GMAC/s, %.2f of fixed 1.0, %.2f of fixed 0.55; mean batch %.2f (fixed 1.0: %.2f)\n", n, g, g / f1, g / f55, b, fb}' |
    tee -a "$results"
done
