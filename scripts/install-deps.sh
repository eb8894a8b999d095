#!/usr/bin/env bash
# Installs, from Debian 12, the packages CLCA Serve needs that are missing.
# Safe to run any number of times: installs nothing when all are present.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libtorch-dev libopenblas0-pthread libdnnl-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libopencv-dev libjpeg62-turbo-dev libabsl-dev prometheus-cpp-dev
  nlohmann-json3-dev libcli11-dev libspdlog-dev
  libgtest-dev libgmock-dev
  clang libclang-rt-dev llvm
  prometheus nginx docker-compose
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "installed" ] || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
