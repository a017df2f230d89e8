// libFuzzer entry point of the trace fuzz target (trace_target.hpp); built with
// -DSPARQ_FUZZ=ON and clang, run by tools/fuzz.sh (docs/reliability.md).
#include "trace_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  sparq::fuzz::trace_one(data, size);
  return 0;
}
