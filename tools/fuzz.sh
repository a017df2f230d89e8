#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang, ASan + UBSan, every target
# instrumented for coverage) and runs each for a bounded time, starting from its
# committed seed corpus (tests/fuzz/corpus/<name>/, left untouched; new inputs go to
# <build dir>/fuzz-corpus/<name>/, crashes to <build dir>/fuzz-artifacts/).
#   tools/fuzz.sh [seconds per fuzzer (default 45)] [build dir (default build-fuzz)]
# Prints each fuzzer's executions and coverage; exits non-zero when one finds a crash,
# a leak, a timeout or a broken rule (docs/reliability.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh --clang
secs=${1:-45}
dir=${2:-build-fuzz}
cmake -S . -B "$dir" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" -DSPARQ_SANITIZE=address,undefined -DSPARQ_FUZZ=ON \
  -DSPARQ_BUILD_BENCH=OFF -DSPARQ_BUILD_APPS=OFF -DSPARQ_TEST_INSTALL=OFF >/dev/null
cmake --build "$dir" -j"$(nproc)" --target sparq_fuzzers
mkdir -p "$dir/fuzz-artifacts"
status=0
for name in npy trace checkpoint cache_ops; do
  mkdir -p "$dir/fuzz-corpus/$name"
  log="$dir/fuzz-$name.log"
  # -malloc_limit_mb: a parser must not allocate far beyond its input; -timeout: no input
  # may take 10 s (a hang); leaks are checked (ASan's LeakSanitizer) at exit.
  if ! ASAN_OPTIONS=abort_on_error=1 LSAN_OPTIONS=suppressions="$PWD/.ci/lsan.supp" \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$dir/tests/fuzz/sparq_${name}_fuzzer" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -malloc_limit_mb=1024 -print_final_stats=1 -artifact_prefix="$dir/fuzz-artifacts/$name-" \
    "$dir/fuzz-corpus/$name" "tests/fuzz/corpus/$name" >"$log" 2>&1; then
    echo "fuzz $name: FAILED (log: $log)"
    tail -40 "$log"
    status=1
    continue
  fi
  field() { grep -o "$1 *[0-9]*" <<<"$2" | grep -o '[0-9]*$' || echo '?'; }
  stats=$(grep '^stat::' "$log" || true)
  last=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
  execs=$(field 'stat::number_of_executed_units:' "$stats")
  rate=$(field 'stat::average_exec_per_sec:' "$stats")
  cov=$(field 'cov:' "$last")
  ft=$(field 'ft:' "$last")
  units=$(field 'corp:' "$last")
  echo "fuzz $name: ${secs} s, ${execs} executions (${rate}/s), cov ${cov} edges, ft ${ft} features, corpus ${units} inputs"
done
exit $status
