#include <string>

#include "cache/block_layout.hpp"
#include "common/checked_math.hpp"
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
  // Bounds catch swapped arguments and keep each field's own sizes (a block's bytes, a
  // sequence's tables) far from overflow; products of several fields are checked below.
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
  if (static_cast<unsigned>(layouts) > static_cast<unsigned>(KeyLayout::fused))
    throw Error(ErrorCode::invalid_argument, "layouts is not one of both, s-major, d-major, fused");
  if (static_cast<unsigned>(d_major_type) > static_cast<unsigned>(DMajorType::int8))
    throw Error(ErrorCode::invalid_argument, "d_major_type is not one of same, int8");
  if (d_major_type == DMajorType::int8 && (!has_s_major(layouts) || !has_d_major(layouts)))
    throw Error(ErrorCode::invalid_argument,
                "d_major_type=int8 with layouts=" + std::string(to_string(layouts)) +
                    ": an int8 d-major copy needs the exact S-major keys beside it (layouts both or fused)");
  if (static_cast<unsigned>(placement) > static_cast<unsigned>(Placement::by_head))
    throw Error(ErrorCode::invalid_argument, "placement is not one of local, interleave, by-head");
  // The pool is sized up front (memory is taken only as blocks are used): its block
  // count and its bytes must be representable.
  const std::size_t per_head = capacity_tokens / block_tokens + (capacity_tokens % block_tokens != 0);
  const auto blocks = checked_mul(layers, kv_heads, per_head);
  if (!blocks)
    throw Error(ErrorCode::invalid_argument,
                "layers*kv_heads*ceil(capacity_tokens/block_tokens) = " + std::to_string(layers) + "*" +
                    std::to_string(kv_heads) + "*" + std::to_string(per_head) +
                    " blocks overflows size_t: lower capacity_tokens (or raise block_tokens)");
  const std::size_t block_bytes = BlockLayout::for_config(*this).system_bytes();
  if (!checked_mul(*blocks, block_bytes))
    throw Error(ErrorCode::invalid_argument,
                "a pool of " + std::to_string(*blocks) + " blocks of " + std::to_string(block_bytes) +
                    " bytes overflows size_t bytes: lower capacity_tokens (or raise block_tokens)");
}

std::size_t pool_blocks(const CacheConfig& c) noexcept {
  return c.layers * c.kv_heads * (c.capacity_tokens / c.block_tokens + (c.capacity_tokens % c.block_tokens != 0));
}

}  // namespace sparq
