#!/usr/bin/env bash
# ThreadSanitizer job (docs/reliability.md says what it covers): builds the cache and
# decode tests with clang and -fsanitize=thread, the kernels running their chunks on
# std::threads (SPARQ_STD_THREAD_KERNELS: Debian's oneTBB is not instrumented), and runs
# the concurrency tests, the soak test and a slice of the decode tests.
#   tools/tsan.sh [build dir (default build-tsan)]
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh --clang
dir=${1:-build-tsan}
cmake -S . -B "$dir" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" -DSPARQ_SANITIZE=thread -DSPARQ_STD_THREAD_KERNELS=ON \
  -DSPARQ_BUILD_BENCH=OFF -DSPARQ_BUILD_APPS=OFF -DSPARQ_TEST_INSTALL=OFF >/dev/null
cmake --build "$dir" -j"$(nproc)" --target sparq_cache_test sparq_cache_faults_test sparq_soak_test \
  sparq_kernels_test
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 history_size=4"
run() {
  echo "--- TSan: $*"
  "$@" --gtest_brief=1
}
run "$dir/tests/cache/sparq_cache_test"
run "$dir/tests/cache/sparq_cache_faults_test"
run "$dir/tests/soak/sparq_soak_test"
# Decode with its chunks on std::threads, every compiled ISA: batches of different
# lengths over KV-head ranges, one against two threads, profiles, every refusal. (All of
# Isa/DenseDecode and Isa/SparqDecode take ~10 min under TSan here; these ~40 s.)
decode_tests='DecodeErrors.*'
for t in BatchOfDifferentLengthsAndKvHeadRange OneAndTwoThreadsAreBitIdentical ProfileCountsLinesTouched; do
  decode_tests+=":Isa/DenseDecode.$t/*:Isa/SparqDecode.$t/*"
done
run "$dir/tests/kernels/sparq_kernels_test" --gtest_filter="$decode_tests"
