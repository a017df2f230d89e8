// Scalar helpers for code compiled once per ISA (the families' *_inl.hpp), with internal
// linkage. std::min, std::fill, std::popcount and friends are inline templates on
// non-Arch types: every ISA's object would define the same weak symbol, compiled with
// its own flags, and the linker would keep one copy for all (tools/check-odr.sh).
#pragma once

#include <cstddef>
#include <cstdint>

#include "sparq/kv_cache.hpp"

namespace sparq::kernels {
namespace {

constexpr float kInfF = __builtin_inff();
constexpr std::int32_t kMaxI32 = 0x7fffffff;

template <class T>
constexpr T smin(T a, T b) noexcept {
  return b < a ? b : a;
}
template <class T>
constexpr T smax(T a, T b) noexcept {
  return a < b ? b : a;
}
template <class T>
void fill_n(T* p, std::size_t n, T value) noexcept {
  for (std::size_t i = 0; i < n; ++i) p[i] = value;
}
inline int popcount64(std::uint64_t x) noexcept {
  return __builtin_popcountll(x);
}
inline int ctz64(std::uint64_t x) noexcept {
  return __builtin_ctzll(x);
}
inline std::int32_t bits_of(float f) noexcept {
  return __builtin_bit_cast(std::int32_t, f);
}

// LayerView's accessors (inline functions of a public header) for the same reason.
inline bool keeps_s_major(KeyLayout l) noexcept {
  return l != KeyLayout::d_major;
}
inline const std::byte* block_of(const LayerView& v, std::size_t head, std::size_t b) noexcept {
  return v.blocks[b * v.kv_heads + head];
}
inline const std::byte* d_major_block_of(const LayerView& v, std::size_t head, std::size_t b) noexcept {
  return v.d_major_blocks[b * v.kv_heads + head];
}

}  // namespace
}  // namespace sparq::kernels
