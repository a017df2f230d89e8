// libFuzzer entry point of the cache_ops fuzz target (cache_ops_target.hpp); built with
// -DSPARQ_FUZZ=ON and clang, run by tools/fuzz.sh (docs/reliability.md).
#include "cache_ops_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  sparq::fuzz::cache_ops_one(data, size);
  return 0;
}
