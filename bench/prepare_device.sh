#!/usr/bin/env bash
# Prepares a GPU check: run HERE, from anywhere, after building with CUDA:
#
#   cmake -B build-gpu -DCMAKE_CUDA_ARCHITECTURES=90 && cmake --build build-gpu -j2
#   bench/prepare_device.sh [BUILD_DIR] [DATA_PATH...]
#
# The GPU machine has the CUDA toolkit and driver but none of our Debian -dev packages, so
# this copies the non-system shared libraries that the programs in BUILD_DIR (default
# build-gpu) need, found with ldd, into local/devlibs/ (big ones gzipped: the carried tree is
# limited to 64 MiB; bench/device_check.sh unpacks them). cuBLASLt is not copied (540 MB):
# the GPU machine's toolkit provides it. Each DATA_PATH (a file or folder, e.g.
# ../shared/data/nsmc) is copied into local/devdata/, which device_check.sh uses as
# KOELECTRA_DATA_DIR. Then carry BUILD_DIR, local/devlibs (and local/devdata).
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build-gpu}"
shift || true
[ -d "$build/tests" ] || { echo "prepare_device.sh: $build/tests: no build there" >&2; exit 2; }

libs=local/devlibs
rm -rf "$libs"
mkdir -p "$libs"
# present on any GPU machine: glibc, the C++ runtime, base Ubuntu libraries, CUDA itself
system='^(linux-vdso|ld-linux|libc|libm|libdl|librt|libpthread|libresolv|libstdc\+\+|libgcc_s|libz|libbz2|liblzma|libzstd|libcrypto|libssl|libcuda|libcudart|libcublas|libcublasLt|libnvidia)[.-]'
programs=$(find "$build/" -maxdepth 2 -type f -perm -u+x ! -name '*.so*' ! -path '*/CMakeFiles/*')
for p in $programs; do
    ldd "$p" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}'
done | sort -u | while read -r name path; do
    [[ "$name" =~ $system ]] && continue
    cp -L "$path" "$libs/$name"
done
for f in "$libs"/*; do
    if [ -f "$f" ] && [ "$(stat -c %s "$f")" -gt 4000000 ]; then gzip -9 "$f"; fi
done

if [ $# -gt 0 ]; then
    rm -rf local/devdata
    mkdir -p local/devdata
    for d in "$@"; do cp -rL "$d" local/devdata/; done
fi

echo "local/devlibs:"
ls -la "$libs"
du -sh "$build/" "$libs"
[ -d local/devdata ] && du -sh local/devdata
echo "carry: $build local/devlibs$([ -d local/devdata ] && echo ' local/devdata')"
