#!/usr/bin/env bash
# Per-request keep rates: ViT-S/16 EViT + CLCA at 224 px (random weights)
# served by clca-server (max_batch_size 8), 16 closed-loop callers of
# `clca-client perf` with raw pixels. Each round measures, in turn, one window
# of each:
#   fixed keep rate 1.0,
#   keep rates drawn uniformly from 0.10, 0.15, ..., 1.00 per request on a
#   version that runs mixed batches ("mix_keep_rates": true),
#   fixed keep rate 0.55 (the mean of the mix),
#   the same uniform keep rates on a version that batches by keep rate
#   ("mix_keep_rates": false),
# and prints the GMAC/s the answers report and the mean batch size. The
# ratios are taken round by round, between runs a few seconds apart, and
# their median printed: the machine's own speed drifts more over minutes
# than the differences measured.
#   OUT (default bench-results/mixed), BUILD (default build)
#   ROUNDS (default 5), WINDOW_MS (default 5000): 1 window per run
#   WORKERS (default 1) batch workers of THREADS intra-op threads each
#   (default: the cores shared among them)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
OUT=${OUT:-bench-results/mixed}
ROUNDS=${ROUNDS:-5}
WINDOW_MS=${WINDOW_MS:-5000}
WORKERS=${WORKERS:-1}
THREADS=${THREADS:-$(( $(nproc) / WORKERS > 0 ? $(nproc) / WORKERS : 1 ))}
mkdir -p "$OUT"
source scripts/server-lib.sh
server=""
trap '[ -n "$server" ] && kill -TERM "$server" 2>/dev/null || true' EXIT

vits_clca_config "$OUT/vits-clca-224.json"
demo_repository "$OUT/repo" 2000 "$WORKERS" "$THREADS" "$OUT/vits-clca-224.json" float32 grouped
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
    --concurrency 16 --window-ms "$WINDOW_MS" --max-windows 1 --warmup-ms 2000 --json --quiet \
    "$@" >"$OUT/$name-$round.json" || true
  echo "round $round $name gmacs_per_s $(json_value "$OUT/$name-$round.json" gmacs_per_s)" \
       "images_per_s $(json_value "$OUT/$name-$round.json" throughput_per_s)" \
       "mean_batch $(json_value "$OUT/$name-$round.json" mean_batch_size)" | tee -a "$results"
}
for round in $(seq 1 "$ROUNDS"); do
  run fixed-1.0 grouped --keep-rates 1.0
  run uniform-mixed mixed --keep-rates "$uniform"
  run fixed-0.55 grouped --keep-rates 0.55
  run uniform-grouped grouped --keep-rates "$uniform"
done
# value NAME ROUND KEY: KEY of run NAME in that round.
value() {
  grep "^round $2 $1 " "$results" | awk -v k="$3" '{for (i = 1; i < NF; ++i) if ($i == k) print $(i + 1)}'
}
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
for name in uniform-grouped uniform-mixed; do
  for round in $(seq 1 "$ROUNDS"); do
    awk -v g="$(value "$name" "$round" gmacs_per_s)" -v f1="$(value fixed-1.0 "$round" gmacs_per_s)" \
        -v f55="$(value fixed-0.55 "$round" gmacs_per_s)" -v b="$(value "$name" "$round" mean_batch)" \
        'BEGIN {if (f1 > 0 && f55 > 0) printf "%s %s %s %s\n", g, g / f1, g / f55, b}'
  done >"$OUT/$name-ratios.txt"
  awk -v n="$name" -v g="$(cut -d' ' -f1 "$OUT/$name-ratios.txt" | median)" \
      -v r1="$(cut -d' ' -f2 "$OUT/$name-ratios.txt" | median)" \
      -v r55="$(cut -d' ' -f3 "$OUT/$name-ratios.txt" | median)" \
      -v b="$(cut -d' ' -f4 "$OUT/$name-ratios.txt" | median)" \
      -v lo="$(cut -d' ' -f2 "$OUT/$name-ratios.txt" | sort -g | head -n 1)" \
      -v hi="$(cut -d' ' -f2 "$OUT/$name-ratios.txt" | sort -g | tail -n 1)" \
      'BEGIN {printf "%s: %.2f GMAC/s, %.3f of fixed 1.0 (rounds %.3f-%.3f), %.3f of fixed 0.55; mean batch %.2f\n", n, g, r1, lo, hi, r55, b}' |
    tee -a "$results"
done
