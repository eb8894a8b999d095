#!/usr/bin/env bash
# Reproduces the bundled demo model and the CLCA vs no-CLCA comparison:
# generates the synthetic scanned-leaf cultivars, trains the ViT-Tiny-width
# EViT + CLCA model and the same model without CLCA side by side (one core
# each, the same data, seed, recipe and time budget), then evaluates both with
# `clca eval` on a freshly generated test split (another image seed).
#
#   scripts/train-demo.sh [WORK_DIR]      (default /tmp/clca-demo-train)
#
# MINUTES (default 40) caps each training run. The CLCA model ends up in
# WORK_DIR/clca/1, ready to copy into deploy/model-repository/clca-demo/1.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${CLCA_BUILD_DIR:-build}
CLCA="$BUILD/tools/clca"
WORK=${1:-/tmp/clca-demo-train}
MINUTES=${MINUTES:-40}
source scripts/process-env.sh

# Scanned leaves filling the frame: cultivars as far apart as the generator
# allows, a visible surface network, little colour and lighting variation.
GENERATOR=(--classes 8 --family-size 1 --family-spread 0.5 --detail-length 2
  --texture-contrast 3 --colour-jitter 0.2 --scanner-background --leaf-length 1.1 1.4
  --max-rotation 10 --max-clutter 0 --occlusion-probability 0.1)
mkdir -p "$WORK"
"$CLCA" synth --out "$WORK/data" --train-per-class 600 --test-per-class 0 --seed 1 "${GENERATOR[@]}"
"$CLCA" synth --out "$WORK/test" --train-per-class 0 --test-per-class 50 --seed 2 "${GENERATOR[@]}"

base='"model": "evit_vit_tiny_patch16_224", "embed_dim": 192, "depth": 6, "num_heads": 3,
  "input_size": 224, "reduction_loc": [1, 2, 3], "keep_rate": [0.5]'
echo "{$base, \"ifa_head\": true, \"clc\": true, \"num_clr\": 1}" >"$WORK/clca.json"
echo "{$base, \"ifa_head\": false, \"clc\": false, \"num_clr\": 0}" >"$WORK/plain.json"

RECIPE=(--epochs 12 --warmup-epochs 1 --cooldown-epochs 1 --lr 5e-4 --batch 16 --seed 1
  --keep-rates 1.0 0.5 0.1 --patch-init dct --threads 1 --loader-threads 1
  --max-minutes "$MINUTES" --half --quiet --json)
pids=()
for run in clca plain; do
  rm -rf "${WORK:?}/$run"
  "$CLCA" train --data "$WORK/data" --out "$WORK/$run/1" --config "$WORK/$run.json" \
    "${RECIPE[@]}" >"$WORK/$run.train.json" 2>"$WORK/$run.train.log" &
  pids+=("$!")
done
for pid in "${pids[@]}"; do wait "$pid"; done  # a failed run stops the script

"$CLCA" eval --data "$WORK/test" --model "$WORK/clca/1" "$WORK/plain/1" --name "EViT+CLCA" \
  "EViT" --keep-rates 1.0,0.5,0.1 --format markdown --quiet --out "$WORK/eval.md" \
  --plot "$WORK/eval.png"
cat "$WORK/eval.md"
