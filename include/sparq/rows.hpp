// Rows: the keys or values handed to an append, as f32 values or as the bit patterns of
// IEEE binary16 (f16) or bfloat16 (bf16), e.g. a model's activations as they come.
//
// Rows is a non-owning view (like std::span): the caller keeps the elements alive for the
// call. What the cache stores does not depend on the source type, only on the values:
// 16-bit inputs are never widened into a temporary buffer; an element whose type is the
// cache's dtype is copied bit for bit, any other is converted with round-to-nearest-even,
// exactly as an f32 append of the same (exactly widened) value would store it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <utility>

#include "sparq/types.hpp"

namespace sparq {

class Rows {
 public:
  // No elements (f32).
  Rows() noexcept = default;
  // f32 values. Implicit, so an f32 span, vector or array passes wherever Rows is expected.
  Rows(std::span<const float> values) noexcept  // NOLINT(google-explicit-constructor)
      : data_(values.data()), size_(values.size()), dtype_(DType::f32) {}
  template <class R>
  requires(std::is_convertible_v<R&&, std::span<const float>> &&
           !std::is_same_v<std::remove_cvref_t<R>, std::span<const float>>) Rows(R&& values)
  noexcept  // NOLINT(google-explicit-constructor)
      : Rows(std::span<const float>(std::forward<R>(values))) {}
  // 16-bit bit patterns of `dtype` (f16 or bf16). Throws Error(invalid_argument) for
  // DType::f32: pass floats instead.
  Rows(std::span<const std::uint16_t> bits, DType dtype);

  [[nodiscard]] static Rows f16(std::span<const std::uint16_t> bits) { return {bits, DType::f16}; }
  [[nodiscard]] static Rows bf16(std::span<const std::uint16_t> bits) { return {bits, DType::bf16}; }

  [[nodiscard]] const void* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }  // elements
  [[nodiscard]] DType dtype() const noexcept { return dtype_; }

 private:
  const void* data_ = nullptr;
  std::size_t size_ = 0;
  DType dtype_ = DType::f32;
};

}  // namespace sparq
