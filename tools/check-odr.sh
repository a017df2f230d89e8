#!/usr/bin/env bash
# ODR check of the per-ISA kernels (STYLE.md, "ODR hazard"): builds every per-ISA object
# file at -O0 (nothing inlined) and fails when a weak function symbol is defined in the
# objects of more than one ISA with different machine code. Such a symbol (a non-template
# inline function, or an STL template instantiated on a non-Arch type) is compiled once
# with AVX-512 flags and once without, and the linker keeps one copy for every caller: an
# AVX-512 copy would crash CPUs without it. Arch-templated code has a different symbol per
# ISA and passes; so does a shared symbol whose code is byte-identical in every ISA's
# objects (xsimd's own register wrappers, which its AVX-512 kernels instantiate for the
# narrower architectures: whichever copy the linker keeps is the same code).
#
# Usage: tools/check-odr.sh [BUILD_DIR]   (default build-odr; configured here at -O0)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-odr}

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-O0 -DSPARQ_BUILD_TESTS=OFF \
  -DSPARQ_BUILD_BENCH=OFF -DSPARQ_BUILD_APPS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target sparq_isa_objects >/dev/null

# "<isa> <symbol> <object>" for every weak function (nm type W) defined in an ISA's objects.
listing=$(mktemp)
trap 'rm -f "$listing"' EXIT
for list in "$build"/isa_objects/*.txt; do
  isa=${list##*_}
  isa=${isa%.txt}
  while read -r obj; do
    [[ -n $obj ]] || continue
    nm --defined-only "$obj" | awk -v isa="$isa" -v obj="$obj" '$2 == "W" { print isa, $3, obj }'
  done <"$list"
done | sort -u -k1,2 >"$listing"

# The machine code of one symbol in one object: instruction bytes only (call targets are
# relocations, zero here), so copies compiled with different flags compare unequal.
code_of() {
  objdump -d --disassemble="$1" "$2" | awk -F'\t' 'NF >= 2 && $1 ~ /^ *[0-9a-f]+:$/ { print $2 }' | tr -d ' \n'
}

# Symbols defined under more than one ISA, then those whose copies differ.
shared=$(awk '{ isas[$2] = isas[$2] " " $1; n[$2]++ } END { for (s in n) if (n[s] > 1) print s "\t" isas[s] }' \
  "$listing" | sort)
bad=""
identical=0
while IFS=$'\t' read -r sym isas; do
  [[ -n $sym ]] || continue
  codes=$(awk -v s="$sym" '$2 == s { print $3 }' "$listing" | while read -r obj; do code_of "$sym" "$obj" | md5sum; done |
    sort -u | wc -l)
  if ((codes == 1)); then
    identical=$((identical + 1))
  else
    bad+="  $(c++filt "$sym")  [$isas ]"$'\n'
  fi
done <<<"$shared"
objects=$(cat "$build"/isa_objects/*.txt | grep -c .)
if [[ -n $bad ]]; then
  echo "check-odr: FAIL: weak functions compiled differently in more than one ISA's objects (give them" >&2
  echo "internal linkage, e.g. kernels/simd/scalar_ops.hpp, or template them on the xsimd Arch):" >&2
  printf '%s' "$bad" >&2
  exit 1
fi
echo "check-odr: OK ($objects per-ISA objects, $(wc -l <"$listing") weak functions; $identical defined under" \
  "several ISAs, each with byte-identical code)"
