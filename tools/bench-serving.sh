#!/usr/bin/env bash
# Served vs in-process throughput of the demo model at saturation, measured in
# alternation (ROUNDS rounds; default 3) because a shared machine's speed
# drifts between minutes: each round runs `clca bench` at batch 8, then
# `clca-client perf` at concurrency 16 against clca-server (max_batch_size 8,
# max_queue_delay_us 0) with encoded PNGs and with raw pixels, per keep rate.
# Prints one line per measurement and a summary of the ratios of the medians.
#   OUT (default bench-results/serving), BUILD (default build), THREADS, ROUNDS
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
OUT=${OUT:-bench-results/serving}
THREADS=${THREADS:-$(nproc)}
ROUNDS=${ROUNDS:-3}
source tools/process-env.sh
mkdir -p "$OUT"
source tools/server-lib.sh
DEMO=deploy/model-repository/clca-demo/1
demo_repository "$OUT/repo" 0
trap 'kill -TERM "${server:-}" 2>/dev/null || true' EXIT
start_server "$OUT/server.log" --model-repository "$OUT/repo" --intra-op-threads "$THREADS"

results="$OUT/results.txt"
: >"$results"
for round in $(seq 1 "$ROUNDS"); do
  for kr in 1.0 0.1; do
    "$BUILD/tools/clca" bench --config "$DEMO/model.json" --batch 8 --keep-rates "$kr" \
      --dtype fp32 --threads "$THREADS" --repeats 5 --min-seconds 3 --json \
      >"$OUT/bench-$round-kr$kr.json"
    ips=$(sed -n 's/.*"images_per_s": *\([0-9.]*\).*/\1/p' "$OUT/bench-$round-kr$kr.json" | head -n 1)
    echo "round $round kr $kr in-process $ips" | tee -a "$results"
    for input in encoded raw; do
      flags=(--image deploy/samples/leaf_300x300.png)
      [ "$input" = raw ] && flags=(--raw-input)
      "$BUILD/client/clca-client" perf --server "$address" --model clca-demo "${flags[@]}" \
        --keep-rates "$kr" --concurrency 16 --warmup-ms 1000 --window-ms 3000 --max-windows 3 \
        --json --quiet >"$OUT/perf-$round-kr$kr-$input.json"
      ips=$(sed -n 's/.*"throughput_per_s":\([0-9.]*\).*/\1/p' "$OUT/perf-$round-kr$kr-$input.json")
      echo "round $round kr $kr served-$input $ips" | tee -a "$results"
    done
  done
done

# median KR WHAT: the median of one kind of measurement over the rounds.
median() {
  grep " kr $1 $2 " "$results" | awk '{print $NF}' | sort -g |
    awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
echo "== medians over $ROUNDS rounds (images/s) and served / in-process"
for kr in 1.0 0.1; do
  base=$(median "$kr" in-process)
  for input in encoded raw; do
    served=$(median "$kr" "served-$input")
    echo "kr $kr: in-process $base, served ($input) $served, ratio $(awk -v a="$served" -v b="$base" 'BEGIN {printf "%.2f", a / b}')"
  done
done | tee "$OUT/summary.txt"
