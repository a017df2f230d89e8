#!/usr/bin/env bash
# Formatting check: every tracked C and C++ source must be what clang-format (with the
# repo's .clang-format) makes of it. Prints the files that differ and exits 1.
#   tools/check-format.sh          check
#   tools/check-format.sh --fix    reformat them in place
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh --clang  # clang-format 14: another version formats differently
fix=0
[[ ${1:-} == --fix ]] && fix=1
mapfile -t files < <(git ls-files '*.c' '*.h' '*.cpp' '*.hpp')  # not *.hpp.in: clang-format splits CMake's @VAR@
if ((fix)); then
  clang-format -i "${files[@]}"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if ((${#bad[@]})); then
  echo "check-format: ${#bad[@]} of ${#files[@]} files differ from clang-format $(clang-format --version | grep -o '[0-9][0-9.]*' | head -1):" >&2
  printf '  %s\n' "${bad[@]}" >&2
  echo "run tools/check-format.sh --fix" >&2
  exit 1
fi
echo "check-format: OK (${#files[@]} files)"
