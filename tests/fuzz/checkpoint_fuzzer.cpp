// libFuzzer entry point of the checkpoint fuzz target (checkpoint_target.hpp); built with
// -DSPARQ_FUZZ=ON and clang, run by tools/fuzz.sh (docs/reliability.md).
#include "checkpoint_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  sparq::fuzz::checkpoint_one(data, size);
  return 0;
}
