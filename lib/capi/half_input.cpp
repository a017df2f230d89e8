// Widening and narrowing of 16-bit inputs and outputs (scalar, through the cache's own
// round-to-nearest-even conversions, so the results equal what the cache stores).
#include "capi/half_input.hpp"

#include "cache/element.hpp"

namespace sparq::capi {

void widen(Half type, const std::uint16_t* in, float* out, std::size_t n) noexcept {
  if (type == Half::bf16)
    for (std::size_t i = 0; i < n; ++i) out[i] = element::bf16_to_f32(in[i]);
  else
    for (std::size_t i = 0; i < n; ++i) out[i] = element::f16_to_f32(in[i]);
}

void narrow(Half type, const float* in, std::uint16_t* out, std::size_t n) noexcept {
  if (type == Half::bf16)
    for (std::size_t i = 0; i < n; ++i) out[i] = element::f32_to_bf16(in[i]);
  else
    for (std::size_t i = 0; i < n; ++i) out[i] = element::f32_to_f16(in[i]);
}

}  // namespace sparq::capi
