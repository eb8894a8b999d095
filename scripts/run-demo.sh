#!/usr/bin/env bash
# The main job: installs what is missing, builds, starts clca-server on the
# bundled model repository and classifies the sample leaves (one test image
# of each demo cultivar, named after it) with clca-client at keep rates 1.0,
# 0.5 and 0.1, then stops the server (SIGTERM, drained).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
BUILD=${CLCA_BUILD_DIR:-build}
source scripts/process-env.sh
REPO=${CLCA_MODEL_REPOSITORY:-deploy/model-repository}
MODEL=${CLCA_MODEL:-clca-demo}

source scripts/server-lib.sh
log=$(mktemp)
trap 'kill "${server:-}" 2>/dev/null || true; rm -f "$log"' EXIT
start_server "$log" --model-repository "$REPO"
sed -n 's/.*\(listening.*\)/clca-server \1/p' "$log" | head -n 1

"$BUILD/client/clca-client" models --server "$address"
for kr in 1.0 0.5 0.1; do
  echo
  echo "== keep rate $kr"
  "$BUILD/client/clca-client" classify --server "$address" --model "$MODEL" --keep-rate "$kr" \
    --top-k 3 deploy/samples/cultivar_*.png
done

kill -TERM "$server"
wait "$server"
trap - EXIT
rm -f "$log"
