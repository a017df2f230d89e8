// Size arithmetic that reports overflow instead of wrapping. Every product or sum of
// caller-supplied sizes (token counts, heads, dimensions, pool blocks) goes through
// these, so that a huge argument is refused by name rather than wrapping into a small,
// plausible number that passes a later check.
#pragma once

#include <cstddef>
#include <optional>

namespace sparq {

// a * b, or nullopt when it does not fit in std::size_t.
[[nodiscard]] constexpr std::optional<std::size_t> checked_mul(std::size_t a, std::size_t b) noexcept {
  std::size_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// The product of all factors, or nullopt when any partial product overflows.
template <class... Sizes>
[[nodiscard]] constexpr std::optional<std::size_t> checked_mul(std::size_t a, std::size_t b, Sizes... rest) noexcept {
  const std::optional<std::size_t> ab = checked_mul(a, b);
  if (!ab) return std::nullopt;
  return checked_mul(*ab, std::size_t(rest)...);
}

// a + b, or nullopt when it does not fit in std::size_t.
[[nodiscard]] constexpr std::optional<std::size_t> checked_add(std::size_t a, std::size_t b) noexcept {
  std::size_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

}  // namespace sparq
