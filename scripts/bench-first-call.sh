#!/usr/bin/env bash
# The first call on a model version that just became AVAILABLE against its
# steady latency, with and without warm-up. Per round and warm-up setting:
# starts clca-server (polling the repository every 0.2 s) with the demo model
# as version 1 and classifies one image (the first call after start) and 20
# more (steady); then moves version 2 in (staged, then renamed), waits until
# `clca-client models` shows it AVAILABLE, and does the same on version 2
# (the first call after a rollout). Prints the first call's total_us and
# compute_us (as the server reports them) beside the median of the 20, and
# their ratio.
#   OUT (default bench-results/first-call), BUILD (default build), ROUNDS (3)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
OUT=${OUT:-bench-results/first-call}
ROUNDS=${ROUNDS:-3}
IMAGE=deploy/samples/cultivar_000.png
mkdir -p "$OUT"
source scripts/server-lib.sh
server=""
trap '[ -n "$server" ] && kill -TERM "$server" 2>/dev/null || true' EXIT

# field NAME: the server's microseconds NAME from `classify --json` lines.
field() { sed -n "s/.*\"$1\":\"\\([0-9]*\\)\".*/\\1/p"; }
median() { sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
classify() {
  "$BUILD/client/clca-client" classify "$IMAGE" --server "$address" --model clca-demo "$@" --json
}

report() {
  local what=$1 first=$2 steady=$3
  local first_total first_compute steady_total steady_compute
  first_total=$(echo "$first" | field total_us)
  first_compute=$(echo "$first" | field compute_us)
  steady_total=$(echo "$steady" | field total_us | median)
  steady_compute=$(echo "$steady" | field compute_us | median)
  echo "$what first_total_us=$first_total steady_total_us=$steady_total" \
       "ratio_total=$(awk "BEGIN {printf \"%.2f\", $first_total / $steady_total}")" \
       "first_compute_us=$first_compute steady_compute_us=$steady_compute" \
       "ratio_compute=$(awk "BEGIN {printf \"%.2f\", $first_compute / $steady_compute}")"
}

for round in $(seq 1 "$ROUNDS"); do
  for warmup in true false; do
    repo=$OUT/repo-$warmup
    demo_repository "$repo" 0 1
    version=$repo/clca-demo/1
    # serving.json with "warmup" set: insert the key before the closing brace.
    sed -i "s/}\$/, \"warmup\": $warmup}/" "$version/serving.json"
    start_server "$OUT/server-$warmup.log" --model-repository "$repo" --repository-poll-seconds 0.2 \
      --log-level warn
    # The first call after the server started (version 1 AVAILABLE).
    first=$(classify --version 1)
    steady=$(for _ in $(seq 1 20); do classify --version 1; done)
    report "round=$round warmup=$warmup at=start" "$first" "$steady"
    # The first call on version 2, moved in while the server runs.
    cp -r "$version" "$repo/clca-demo/.staging-2"
    mv "$repo/clca-demo/.staging-2" "$repo/clca-demo/2"
    for _ in $(seq 1 300); do
      "$BUILD/client/clca-client" models --server "$address" | grep -q "v2: .*AVAILABLE" && break
      sleep 0.05
    done
    first=$(classify --version 2)
    steady=$(for _ in $(seq 1 20); do classify --version 2; done)
    report "round=$round warmup=$warmup at=rollout" "$first" "$steady"
    kill -TERM "$server"
    wait "$server" || true
    server=""
  done
done
