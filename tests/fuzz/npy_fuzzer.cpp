// libFuzzer entry point of the npy fuzz target (npy_target.hpp); built with
// -DSPARQ_FUZZ=ON and clang, run by tools/fuzz.sh (docs/reliability.md).
#include "npy_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  sparq::fuzz::npy_one(data, size);
  return 0;
}
