// Element types, key layouts and model shape shared by the cache and the kernels.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace sparq {

// Storage type of cached K/V. Compute is always f32; conversion happens in registers.
enum class DType : std::uint8_t { f32, f16, bf16 };

[[nodiscard]] constexpr std::size_t size_of(DType t) noexcept {
  return t == DType::f32 ? 4 : 2;
}
[[nodiscard]] std::string_view to_string(DType t) noexcept;
// Parses "f32" | "f16" | "bf16"; nullopt for anything else.
[[nodiscard]] std::optional<DType> parse_dtype(std::string_view name) noexcept;

// Which copies of the keys a cache keeps, and how a block lays out its rows. SparQ's fast
// path needs an S-major and a d-major copy: stage 1 streams r rows of the d-major copy,
// stage 2 gathers k rows of the S-major copy.
//   both     S-major keys [B][d], values [B][d], and the d-major copy
//   s_major  S-major keys and values
//   d_major  the d-major copy and values
//   fused    each position's key and value side by side ([B][key | value]: stage 2 reads
//            one contiguous 2·d run per position), and the d-major copy
enum class KeyLayout : std::uint8_t { both, s_major, d_major, fused };

[[nodiscard]] constexpr bool has_s_major(KeyLayout l) noexcept {
  return l != KeyLayout::d_major;
}
[[nodiscard]] constexpr bool has_d_major(KeyLayout l) noexcept {
  return l != KeyLayout::s_major;
}
[[nodiscard]] std::string_view to_string(KeyLayout l) noexcept;
// Parses "both" | "s-major" | "d-major" | "fused".
[[nodiscard]] std::optional<KeyLayout> parse_key_layout(std::string_view name) noexcept;

// Element type of the d-major key copy. `same`: the cache's dtype (an exact copy). `int8`:
// one byte per element with a scale per (block, component), absmax / 127, so stage 1
// reads half the bytes of a 16-bit copy; stage 2 still reads exact keys, so int8 only
// changes which positions are fetched. Needs an S-major copy (layouts both or fused).
enum class DMajorType : std::uint8_t { same, int8 };
[[nodiscard]] std::string_view to_string(DMajorType t) noexcept;
// Parses "same" | "int8".
[[nodiscard]] std::optional<DMajorType> parse_d_major_type(std::string_view name) noexcept;

// Where the pages of cache blocks live on a multi-node machine (see DESIGN §2 NUMA).
enum class Placement : std::uint8_t { local, interleave, by_head };
[[nodiscard]] std::string_view to_string(Placement p) noexcept;
// Parses "local" | "interleave" | "by-head".
[[nodiscard]] std::optional<Placement> parse_placement(std::string_view name) noexcept;

// Shape of the attention part of a transformer. Query head h reads KV head h / group()
// (the Llama / Hugging Face convention); q_heads must be a multiple of kv_heads.
struct ModelShape {
  std::size_t layers = 1;
  std::size_t q_heads = 1;
  std::size_t kv_heads = 1;
  std::size_t head_dim = 128;

  [[nodiscard]] std::size_t group() const noexcept { return kv_heads ? q_heads / kv_heads : 0; }
  // Throws sparq::Error when a count is zero or q_heads is not a multiple of kv_heads.
  void validate() const;
};

}  // namespace sparq
