#!/usr/bin/env bash
# Served vs in-process throughput of the demo model (or CONFIG) at saturation, per batch
# worker layout, measured in alternation (ROUNDS rounds; default 3) because a
# shared machine's speed drifts between minutes. A layout WxT is W batch
# workers of T intra-op threads each (LAYOUTS; default "1x<cores> <cores>x1").
# Each round, per keep rate and layout, runs `clca bench --batch 8 --streams W
# --threads T` (the same layout in process), then `clca-client perf` at
# concurrency 16·W (two batches per worker) against clca-server
# (max_batch_size 8, max_queue_delay_us 0) with encoded PNGs, with raw pixels,
# and with raw pixels over ClassifyStream (`--streaming`). Prints one line per
# measurement and the ratios of the medians.
#   OUT (default bench-results/serving), BUILD (default build), ROUNDS, LAYOUTS
#   CONFIG: a model.json to serve with random weights instead of the demo model
#   PRECISION: float32 (default) or bfloat16; KEEP_RATES (default "1.0 0.1")
#   WINDOW_MS: each perf measurement window (default 3000)
#   INPUTS: which of "encoded raw raw-streaming" (default all three)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
OUT=${OUT:-bench-results/serving}
ROUNDS=${ROUNDS:-3}
LAYOUTS=${LAYOUTS:-"1x$(nproc) $(nproc)x1"}
source scripts/process-env.sh
mkdir -p "$OUT"
source scripts/server-lib.sh
CONFIG=${CONFIG:-}
PRECISION=${PRECISION:-float32}
KEEP_RATES=${KEEP_RATES:-"1.0 0.1"}
WINDOW_MS=${WINDOW_MS:-3000}
INPUTS=${INPUTS:-"encoded raw raw-streaming"}
MODEL_JSON=${CONFIG:-deploy/model-repository/clca-demo/1/model.json}
NAME=clca-demo
[ -n "$CONFIG" ] && NAME=$(basename "$CONFIG" .json)
DTYPE=fp32
[ "$PRECISION" = bfloat16 ] && DTYPE=bf16
declare -A addresses
servers=()
trap 'for pid in "${servers[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done' EXIT
for layout in $LAYOUTS; do
  demo_repository "$OUT/repo-$layout" 0 "${layout%x*}" "${layout#*x}" "$CONFIG" "$PRECISION" "$NAME"
  start_server "$OUT/server-$layout.log" --model-repository "$OUT/repo-$layout"
  servers+=("$server")
  addresses[$layout]=$address
done

results="$OUT/results.txt"
: >"$results"
for round in $(seq 1 "$ROUNDS"); do
  for kr in $KEEP_RATES; do
    for layout in $LAYOUTS; do
      workers=${layout%x*}
      "$BUILD/tools/clca" bench --config "$MODEL_JSON" --batch 8 --keep-rates "$kr" \
        --dtype "$DTYPE" --streams "$workers" --threads "${layout#*x}" --repeats 5 --min-seconds 3 \
        --json >"$OUT/bench-$round-kr$kr-$layout.json"
      ips=$(sed -n 's/.*"images_per_s": *\([0-9.]*\).*/\1/p' "$OUT/bench-$round-kr$kr-$layout.json" | head -n 1)
      echo "round $round kr $kr $layout in-process $ips" | tee -a "$results"
      for input in $INPUTS; do
        flags=(--image deploy/samples/leaf_300x300.png)
        [ "$input" = raw ] && flags=(--raw-input)
        [ "$input" = raw-streaming ] && flags=(--raw-input --streaming)
        "$BUILD/client/clca-client" perf --server "${addresses[$layout]}" --model "$NAME" \
          "${flags[@]}" --keep-rates "$kr" --concurrency $((16 * workers)) --warmup-ms 1000 \
          --window-ms "$WINDOW_MS" --max-windows 3 --json --quiet >"$OUT/perf-$round-kr$kr-$layout-$input.json"
        ips=$(sed -n 's/.*"throughput_per_s":\([0-9.]*\).*/\1/p' "$OUT/perf-$round-kr$kr-$layout-$input.json")
        echo "round $round kr $kr $layout served-$input $ips" | tee -a "$results"
      done
    done
  done
done

# median KR LAYOUT WHAT: the median of one kind of measurement over the rounds.
median() {
  grep " kr $1 $2 $3 " "$results" | awk '{print $NF}' | sort -g |
    awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
echo "== medians over $ROUNDS rounds (images/s); served / in-process of the same layout, and / the best in-process layout"
for kr in $KEEP_RATES; do
  best=0
  for layout in $LAYOUTS; do
    best=$(awk -v a="$best" -v b="$(median "$kr" "$layout" in-process)" 'BEGIN {print (b > a) ? b : a}')
  done
  for layout in $LAYOUTS; do
    base=$(median "$kr" "$layout" in-process)
    for input in $INPUTS; do
      served=$(median "$kr" "$layout" "served-$input")
      echo "kr $kr, $layout: in-process $base, served ($input) $served, ratio $(ratio "$served" "$base"), to best in-process $best: $(ratio "$served" "$best")"
    done
  done
done | tee "$OUT/summary.txt"
