#!/usr/bin/env bash
# Packs what clca-server, clca-client, clca and the tests need from Debian 12
# besides LibTorch (gRPC, protobuf with protoc and grpc_cpp_plugin, Abseil,
# OpenCV, prometheus-cpp, spdlog, CLI11, nlohmann-json, GoogleTest and the
# shared libraries they load) into gpu-deps/clca-gpu-deps.tar.xz, for a GPU
# machine that has PyTorch's LibTorch (new C++ ABI), a compiler and CMake
# but none of these, and no network. scripts/gpu-check.sh unpacks it there
# and builds against it. Run on Debian 12 after scripts/install-deps.sh.
#
# The archive holds a prefix (usr/include, usr/lib/x86_64-linux-gnu with the
# CMake packages, usr/bin) and clca-gpu-deps.env, which puts its programs
# and libraries on PATH and LD_LIBRARY_PATH. It must stay within 64 MiB (what
# travels with a working tree to the GPU machine): the script fails beyond.
# Of OpenCV's CMake package only core, imgproc and imgcodecs are kept.
#   OUT (gpu-deps), MAX_MIB (64)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-deps}
MAX_MIB=${MAX_MIB:-64}
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
stage=$OUT/stage
rm -rf "$stage" && mkdir -p "$stage"

# Headers, CMake packages, link-time symlinks and programs of these packages.
dev_packages=(libgrpc++-dev libgrpc-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
              libabsl-dev libopencv-dev libopencv-core-dev libopencv-imgproc-dev
              libopencv-imgcodecs-dev prometheus-cpp-dev libspdlog-dev libfmt-dev
              nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev libjpeg62-turbo-dev
              libssl-dev zlib1g-dev libc-ares-dev libre2-dev)
for package in "${dev_packages[@]}"; do
  if ! dpkg -s "$package" >/dev/null 2>&1; then
    echo "gpu-deps: $package is not installed (run scripts/install-deps.sh)" >&2
    exit 1
  fi
  dpkg -L "$package" | while read -r path; do
    case $path in
      /usr/share/doc/*|/usr/share/man/*|/usr/share/lintian/*) continue ;;
      /usr/include/opencv4/opencv2/*)
        # OpenCV's headers: the three modules built against, and the top level.
        case $path in
          /usr/include/opencv4/opencv2/core*|/usr/include/opencv4/opencv2/imgproc*|\
          /usr/include/opencv4/opencv2/imgcodecs*|/usr/include/opencv4/opencv2/opencv_modules.hpp|\
          /usr/include/opencv4/opencv2/cvconfig.h) ;;
          *) continue ;;
        esac ;;
      /usr/lib/$arch/libopencv_*)
        case $path in
          */libopencv_core.so|*/libopencv_imgproc.so|*/libopencv_imgcodecs.so) ;;
          *) continue ;;
        esac ;;
      /usr/include/*|/usr/lib/$arch/cmake/*|/usr/share/cmake/*|/usr/lib/cmake/*|\
      /usr/lib/$arch/*.so|/usr/lib/$arch/*.a|/usr/bin/protoc*|/usr/bin/grpc_*_plugin|\
      /usr/src/googletest/*) ;;
      *) continue ;;
    esac
    [ -d "$path" ] && continue
    [ -e "$path" ] || [ -L "$path" ] || continue
    mkdir -p "$stage$(dirname "$path")"
    cp -a "$path" "$stage$path"
  done
done
# Static archives other than GoogleTest's are not linked.
find "$stage/usr/lib/$arch" -maxdepth 1 -name '*.a' ! -name 'libgtest*' ! -name 'libgmock*' -delete

# OpenCV's CMake package: only core, imgproc and imgcodecs are bundled. The
# other modules' locations (and the checks that their files exist) go; their
# targets stay declared, without a file, and nothing links them.
cv=$stage/usr/lib/$arch/cmake/opencv4
python3 - "$cv" <<'EOF'
import glob, re, sys
keep = {"opencv_core", "opencv_imgproc", "opencv_imgcodecs"}
for path in glob.glob(sys.argv[1] + "/OpenCVModules-*.cmake"):
    blocks = re.split(r'(?=# Import target ")', open(path).read())
    open(path, "w").write("".join(
        b for b in blocks
        if not b.startswith("# Import target")
        or re.match(r'# Import target "(\w+)"', b).group(1) in keep))
EOF

# The shared libraries every bundled program and library loads, except the C
# and C++ runtimes (the GPU machine has its own): first what the link-time
# symlinks of the -dev packages point at, then everything those and the
# programs load.
skip='^(libc|libm|libdl|librt|libpthread|ld-linux-x86-64|libstdc\+\+|libgcc_s|libgomp)\.'
libdir=$stage/usr/lib/$arch
# bundle_lib NAME PATH: the file PATH resolves to, under its own name (which
# the CMake packages name), and NAME as a link to it.
bundle_lib() {
  local real
  real=$(readlink -f "$2")
  [ -e "$libdir/$(basename "$real")" ] || cp "$real" "$libdir/$(basename "$real")"
  [ "$1" = "$(basename "$real")" ] || ln -sfn "$(basename "$real")" "$libdir/$1"
}
for link in "$libdir"/*.so; do
  [ -L "$link" ] || continue
  target=$(basename "$(readlink "$link")")
  [ -e "$libdir/$target" ] || bundle_lib "$target" "/usr/lib/$arch/$target"
  ln -sfn "$target" "$link"
done
for file in "$stage"/usr/bin/* "$libdir"/*.so.*; do
  [ -f "$file" ] || continue
  ldd "$file" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' || true
done | sort -u | while read -r soname path; do
  [[ $soname =~ $skip ]] && continue
  [ -e "$libdir/$soname" ] || bundle_lib "$soname" "$path"
done
find "$stage/usr/lib/$arch" -maxdepth 1 -type f -name '*.so.*' -exec strip --strip-unneeded {} + 2>/dev/null || true
strip --strip-unneeded "$stage"/usr/bin/* 2>/dev/null || true

cat >"$stage/clca-gpu-deps.env" <<'EOF'
# Sourced with DEPS_PREFIX set to where the bundle was unpacked.
export PATH="$DEPS_PREFIX/usr/bin:$PATH"
export LD_LIBRARY_PATH="$DEPS_PREFIX/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
EOF
dpkg-query -W -f '${Package} ${Version}\n' "${dev_packages[@]}" >"$stage/clca-gpu-deps.packages"

archive=$OUT/clca-gpu-deps.tar.xz
tar -C "$stage" -cf - . | xz -T0 -9 >"$archive"
bytes=$(stat -c %s "$archive")
echo "gpu-deps: $archive: $((bytes / 1048576)) MiB ($(du -sh "$stage" | cut -f1) unpacked, $(find "$stage" -type f | wc -l) files)"
if [ "$bytes" -gt $((MAX_MIB * 1048576)) ]; then
  echo "gpu-deps: larger than $MAX_MIB MiB" >&2
  exit 1
fi
