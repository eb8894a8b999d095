# Sourced by the tools' scripts that run clca-server; needs $BUILD.

# start_server LOG ARGS...: starts clca-server on a free loopback port (gRPC
# and metrics) with ARGS, output to LOG. Sets $server (its pid) and $address
# (host:port) once it listens; prints LOG and returns 1 if it exits first or
# is not listening within 60 s.
start_server() {
  local log=$1
  shift
  "$BUILD/server/clca-server" --host 127.0.0.1 --port 0 --metrics-port 0 "$@" >"$log" 2>&1 &
  server=$!
  address=""
  for _ in $(seq 1 600); do
    address=$(sed -n 's/.*listening grpc=\([^ ]*\).*/\1/p' "$log" | head -n 1)
    [ -n "$address" ] && return 0
    if ! kill -0 "$server" 2>/dev/null; then break; fi
    sleep 0.1
  done
  cat "$log" >&2
  echo "clca-server did not start" >&2
  return 1
}

# demo_repository DIR DELAY_US [WORKERS THREADS [CONFIG [PRECISION [NAME]]]]: a
# model repository in DIR holding one model, NAME (default clca-demo), with max_batch_size 8,
# max_queue_delay_us DELAY_US, and WORKERS batch workers (default 1) of
# THREADS intra-op threads each (default: the cores shared among them). The
# model is the bundled demo model, or, given CONFIG (a model.json), that
# configuration with random weights (`clca init`, which needs its
# num_classes) and numbered labels.
# PRECISION: float32 (default) or bfloat16.
demo_repository() {
  local demo=deploy/model-repository/clca-demo/1
  local workers=${3:-1}
  local threads=${4:-$(( $(nproc) / workers > 0 ? $(nproc) / workers : 1 ))}
  local config=${5:-}
  local precision=${6:-float32}
  local version="$1/${7:-clca-demo}/1"
  rm -rf "$1" && mkdir -p "$version"
  if [ -z "$config" ]; then
    cp "$demo"/model.pth "$demo"/model.json "$demo"/labels.txt "$version/"
  else
    cp "$config" "$version/model.json"
    "$BUILD/tools/clca" init --config "$config" --output "$version/model.pth" >/dev/null
    local classes
    classes=$(sed -n 's/.*"num_classes": *\([0-9]*\).*/\1/p' "$config" | head -n 1)
    seq -f "class-%g" 0 $((classes - 1)) >"$version/labels.txt"
  fi
  cat >"$version/serving.json" <<JSON
{"max_batch_size": 8, "max_queue_delay_us": $2, "queue_capacity": 256,
 "workers": $workers, "intra_op_threads": $threads,
 "keep_rate": {"default": 1.0, "min": 0.1, "max": 1.0}, "precision": "$precision"}
JSON
}

# vits_clca_config FILE: writes the model.json of ViT-S/16 EViT + CLCA at
# 224 px (200 classes) that the serving benchmarks use.
vits_clca_config() {
  cat >"$1" <<'EOF'
{"model": "evit_vit_small_patch16_224", "input_size": 224, "num_classes": 200,
 "reduction_loc": [3, 6, 9], "ifa_head": true, "clc": true, "num_clr": 1}
EOF
}

# json_value FILE KEY: the first number after "KEY": in FILE.
json_value() { grep -o "\"$2\": *[0-9.e+-]*" "$1" | head -n 1 | sed 's/.*: *//'; }
