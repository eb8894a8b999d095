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

# demo_repository DIR DELAY_US: a model repository in DIR holding the bundled
# demo model with max_batch_size 8, one worker and max_queue_delay_us DELAY_US.
demo_repository() {
  local demo=deploy/model-repository/clca-demo/1
  rm -rf "$1" && mkdir -p "$1/clca-demo/1"
  cp "$demo"/model.pth "$demo"/model.json "$demo"/labels.txt "$1/clca-demo/1/"
  cat >"$1/clca-demo/1/serving.json" <<JSON
{"max_batch_size": 8, "max_queue_delay_us": $2, "queue_capacity": 256, "workers": 1,
 "keep_rate": {"default": 1.0, "min": 0.1, "max": 1.0}, "precision": "float32"}
JSON
}
