#!/usr/bin/env bash
# Checks the dependency rules of the source layout (docs/ARCHITECTURE.md):
# which folders may include which, and what the built binaries link.
#   check-layout.sh SOURCE_DIR [BUILD_DIR]
# Without BUILD_DIR only the includes are checked. Exits 1 on a violation.
set -uo pipefail
src=${1:?usage: check-layout.sh SOURCE_DIR [BUILD_DIR]}
build=${2:-}
failures=0

fail() {
  echo "layout: $*" >&2
  failures=$((failures + 1))
}

# Includes in FOLDER that match PATTERN (an extended regex on the quoted or
# bracketed path) are violations, explained by REASON.
forbid_include() {
  local folder=$1 pattern=$2 reason=$3
  [ -d "$src/$folder" ] || { fail "$folder: no such folder"; return; }
  local hits
  hits=$(grep -rnE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"]($pattern)" \
           --include='*.h' --include='*.cc' "$src/$folder" || true)
  if [ -n "$hits" ]; then
    fail "$folder must not include $reason:"
    echo "$hits" | sed "s|^$src/|  |" >&2
  fi
}

# The model library: LibTorch only, and its folders in one direction.
forbid_include models 'grpc|google/protobuf|.*\.pb\.h|server/|client/|tools/' \
  'gRPC, protobuf, the server, the client or tools'
forbid_include models/cpu 'models/(core|reduction|vit|exec|io|save|preprocess|train)/' 'higher model folders'
forbid_include models/core 'models/(reduction|vit|exec|io|save|preprocess|train)/' 'higher model folders'
forbid_include models/reduction 'models/(vit|exec|io|save|preprocess|train)/' 'higher model folders'
forbid_include models/vit 'models/(exec|io|save|preprocess|train)/' 'higher model folders'
forbid_include models/exec 'models/(io|save|preprocess|train)/' 'higher model folders'
forbid_include models/io 'models/(save|preprocess|train)/' 'higher model folders'
forbid_include models/save 'models/(preprocess|train)/' 'higher model folders'
forbid_include models/preprocess 'models/(core|reduction|vit|exec|io|save|train)/' 'other model folders'
forbid_include models/train 'models/(exec|io|save|preprocess)/' 'checkpoint files or preprocessing'

# The client: gRPC and protobuf, never LibTorch or the server.
forbid_include client 'torch/|ATen/|c10/|caffe2/|models/|server/|tools/' \
  'LibTorch, the model library, the server or tools'

# The server's inner folders know nothing of the wire format, and point one way.
for folder in server/observability server/batching server/repository server/pipeline; do
  forbid_include "$folder" 'grpc|google/protobuf|.*\.pb\.h|clca/v1/|server/api/|server/server\.h' \
    'gRPC, generated proto headers or the API layer'
done
forbid_include server/observability 'models/|server/(batching|repository|pipeline)/' \
  'models or other server folders'
forbid_include server/batching 'models/|server/(observability|repository|pipeline)/' \
  'models or higher server folders'
forbid_include server/repository 'server/pipeline/' 'the pipeline'

# What the binaries link: the offline tool and model tests have no gRPC, the
# client no LibTorch, and the server neither training nor the pickle writer.
needed() { readelf -d "$1" 2>/dev/null | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'; }
check_needed() {
  local binary=$1 pattern=$2 reason=$3
  [ -x "$binary" ] || return 0
  local hits
  hits=$(needed "$binary" | grep -E "$pattern" || true)
  [ -z "$hits" ] || fail "$(basename "$binary") must not link $reason: $(echo $hits)"
}
if [ -n "$build" ]; then
  [ -x "$build/server/clca-server" ] || [ -x "$build/tools/clca" ] ||
    fail "no binaries under $build to check"
  check_needed "$build/tools/clca" '^lib(grpc|gpr|protobuf)' 'gRPC or protobuf'
  check_needed "$build/tests/model_test" '^lib(grpc|gpr|protobuf)' 'gRPC or protobuf'
  check_needed "$build/client/clca-client" '^lib(torch|c10|opencv)' 'LibTorch or OpenCV'
  if [ -x "$build/server/clca-server" ]; then
    symbols=$(nm -C "$build/server/clca-server" 2>/dev/null |
                grep -E ' clca::(Trainer|PickleWriter|SaveCheckpoint)' || true)
    [ -z "$symbols" ] || fail "clca-server must not contain training or the pickle writer:
$symbols"
  fi
fi

if [ "$failures" -gt 0 ]; then
  echo "layout: $failures violation(s); see docs/ARCHITECTURE.md" >&2
  exit 1
fi
echo "layout: dependency rules hold"
