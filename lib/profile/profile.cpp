// Names of the profile phases (sparq/profile.hpp), as used in reports and --json.
#include "sparq/profile.hpp"

namespace sparq {

std::string_view to_string(Phase p) noexcept {
  switch (p) {
    case Phase::dense:
      return "dense";
    case Phase::stage1:
      return "stage1";
    case Phase::topk:
      return "topk";
    case Phase::stage2:
      return "stage2";
    case Phase::reallocation:
      return "reallocation";
  }
  return "unknown";
}

}  // namespace sparq
