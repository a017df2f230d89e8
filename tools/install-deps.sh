#!/usr/bin/env bash
# Installs what sparq needs to build, test and run on Debian 12 (run as root).
# Skips apt entirely when everything is already installed. --clang adds clang 14, its
# sanitizer and libFuzzer runtimes and clang-format (tools/tsan.sh, tools/fuzz.sh,
# tools/check-format.sh).
set -euo pipefail

packages=(
  build-essential cmake pkg-config ccache
  libtbb-dev libtbbbind-2-5 libxsimd-dev libhwloc-dev libnuma-dev
  # hwloc's libxml2 XML parser (only Recommended by libhwloc15, so --no-install-recommends
  # skips it) and lstopo-no-graphics, which the topology tests run
  libhwloc-plugins "hwloc-nox|hwloc"
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev nlohmann-json3-dev libfmt-dev
  nettle-dev libopenblas0-serial
  python3-dev pybind11-dev python3-numpy python3-torch python3-pytest
  gnuplot-nox
)

if [[ "${1:-}" == "--clang" ]]; then
  packages+=(clang libclang-rt-14-dev clang-format)
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for p in "${packages[@]}"; do
  # "a|b": either will do (they conflict); install a
  IFS='|' read -ra alternatives <<<"$p"
  any=0
  for a in "${alternatives[@]}"; do installed "$a" && any=1; done
  ((any)) || missing+=("${alternatives[0]}")
done
if ((${#missing[@]})); then
  echo "sparq: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
