#!/usr/bin/env bash
# Installs what sparq needs to build, test and run on Debian 12 (run as root).
# Skips apt entirely when everything is already installed. --clang adds clang 14 and its
# sanitizer and libFuzzer runtimes (tools/tsan.sh, tools/fuzz.sh).
set -euo pipefail

packages=(
  build-essential cmake pkg-config ccache
  libtbb-dev libtbbbind-2-5 libxsimd-dev libhwloc-dev libnuma-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev nlohmann-json3-dev libfmt-dev
  gnuplot-nox
)

if [[ "${1:-}" == "--clang" ]]; then
  packages+=(clang libclang-rt-14-dev)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "sparq: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
