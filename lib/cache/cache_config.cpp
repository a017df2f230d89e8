#include <string>

#include "sparq/error.hpp"
#include "sparq/kv_cache.hpp"

namespace sparq {

void CacheConfig::validate() const {
  auto at_least_one = [](std::size_t v, const char* name) {
    if (v == 0) throw Error(ErrorCode::invalid_argument, std::string(name) + "=0: must be at least 1");
  };
  at_least_one(layers, "layers");
  at_least_one(kv_heads, "kv_heads");
  at_least_one(head_dim, "head_dim");
  at_least_one(block_tokens, "block_tokens");
  at_least_one(capacity_tokens, "capacity_tokens");
  // Bounds keep every size computation far from overflow and catch swapped arguments.
  auto at_most = [](std::size_t v, std::size_t max, const char* name) {
    if (v > max)
      throw Error(ErrorCode::invalid_argument, std::string(name) + "=" + std::to_string(v) +
                                                   " is too large: must be in [1, " + std::to_string(max) + "]");
  };
  at_most(layers, 1 << 12, "layers");
  at_most(kv_heads, 1 << 12, "kv_heads");
  at_most(head_dim, 1 << 14, "head_dim");
  at_most(block_tokens, 1 << 16, "block_tokens");
  at_most(capacity_tokens, std::size_t{1} << 40, "capacity_tokens");
  if (static_cast<unsigned>(dtype) > static_cast<unsigned>(DType::bf16))
    throw Error(ErrorCode::invalid_argument, "dtype is not one of f32, f16, bf16");
  if (static_cast<unsigned>(layouts) > static_cast<unsigned>(KeyLayout::d_major))
    throw Error(ErrorCode::invalid_argument, "layouts is not one of both, s-major, d-major");
  if (static_cast<unsigned>(placement) > static_cast<unsigned>(Placement::by_head))
    throw Error(ErrorCode::invalid_argument, "placement is not one of local, interleave, by-head");
}

}  // namespace sparq
