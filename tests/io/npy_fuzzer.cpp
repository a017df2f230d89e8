// libFuzzer entry point for the .npy reader (built with -DSPARQ_FUZZ=ON and clang):
//   ./sparq_npy_fuzzer -max_len=4096 corpus/
#include "npy_fuzz_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (sparq::test::npy_fuzz_one(data, size) == sparq::test::FuzzOutcome::wrong) std::abort();
  return 0;
}
