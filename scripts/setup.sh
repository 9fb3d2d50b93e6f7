#!/usr/bin/env bash
# Everything a fresh Debian 12 machine needs before the README's commands: the build's Debian
# packages (installed only when missing; sudo when not root), then the Release build in build/.
# Extra arguments go to cmake's configure step (e.g. -DKOE_CUDA=OFF).
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGES="cmake gcc g++ make pkg-config libcjson-dev libopenblas-dev libzip-dev libutf8proc-dev
          libsentencepiece-dev"
# shellcheck disable=SC2086
if ! dpkg -s $PACKAGES >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    echo "setup: installing the build's Debian packages: $(echo $PACKAGES)" >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # shellcheck disable=SC2086
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        $PACKAGES >/dev/null
fi
cmake -B build -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j"$(nproc)"
