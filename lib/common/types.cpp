#include "sparq/types.hpp"

#include <string>

#include "sparq/error.hpp"
#include "sparq/rows.hpp"

namespace sparq {

Rows::Rows(std::span<const std::uint16_t> bits, DType dtype) : data_(bits.data()), size_(bits.size()), dtype_(dtype) {
  if (dtype == DType::f32)
    throw Error(ErrorCode::invalid_argument,
                "Rows of 16-bit elements cannot have dtype=f32: use f16 or bf16, or pass f32 values as floats");
}

std::string_view to_string(DType t) noexcept {
  switch (t) {
    case DType::f32:
      return "f32";
    case DType::f16:
      return "f16";
    case DType::bf16:
      return "bf16";
  }
  return "?";
}

std::optional<DType> parse_dtype(std::string_view name) noexcept {
  for (DType t : {DType::f32, DType::f16, DType::bf16})
    if (name == to_string(t)) return t;
  return std::nullopt;
}

std::string_view to_string(KeyLayout l) noexcept {
  switch (l) {
    case KeyLayout::both:
      return "both";
    case KeyLayout::s_major:
      return "s-major";
    case KeyLayout::d_major:
      return "d-major";
    case KeyLayout::fused:
      return "fused";
  }
  return "?";
}

std::optional<KeyLayout> parse_key_layout(std::string_view name) noexcept {
  for (KeyLayout l : {KeyLayout::both, KeyLayout::s_major, KeyLayout::d_major, KeyLayout::fused})
    if (name == to_string(l)) return l;
  return std::nullopt;
}

std::string_view to_string(DMajorType t) noexcept {
  switch (t) {
    case DMajorType::same:
      return "same";
    case DMajorType::int8:
      return "int8";
  }
  return "?";
}

std::optional<DMajorType> parse_d_major_type(std::string_view name) noexcept {
  for (DMajorType t : {DMajorType::same, DMajorType::int8})
    if (name == to_string(t)) return t;
  return std::nullopt;
}

std::string_view to_string(Placement p) noexcept {
  switch (p) {
    case Placement::local:
      return "local";
    case Placement::interleave:
      return "interleave";
    case Placement::by_head:
      return "by-head";
  }
  return "?";
}

std::optional<Placement> parse_placement(std::string_view name) noexcept {
  for (Placement p : {Placement::local, Placement::interleave, Placement::by_head})
    if (name == to_string(p)) return p;
  return std::nullopt;
}

void ModelShape::validate() const {
  auto positive = [](std::size_t v, const char* name) {
    if (v == 0) throw Error(ErrorCode::invalid_argument, std::string(name) + "=0: must be at least 1");
  };
  positive(layers, "layers");
  positive(q_heads, "q_heads");
  positive(kv_heads, "kv_heads");
  positive(head_dim, "head_dim");
  if (q_heads % kv_heads != 0)
    throw Error(ErrorCode::shape_mismatch, "q_heads=" + std::to_string(q_heads) +
                                               " is not a multiple of kv_heads=" + std::to_string(kv_heads) +
                                               ": each KV head serves q_heads/kv_heads query heads");
}

}  // namespace sparq
