// Definitions of vector_ops.hpp; included only by vector_ops_<isa>.cpp.
#pragma once

#include <cstring>

#include "kernels/simd/load_convert.hpp"
#include "kernels/simd/storage.hpp"
#include "kernels/simd/vector_ops.hpp"

namespace sparq::kernels {

template <class Arch>
void WidenRow<Arch>::operator()(Arch, DType dtype, const void* src, float* dst, std::size_t n) const {
  visit_dtype(dtype, [&](auto t) {
    using T = decltype(t);
    constexpr std::size_t W = fbatch<Arch>::size;
    const T* s = static_cast<const T*>(src);
    std::size_t i = 0;
    for (; i + W <= n; i += W) load_as_f32<Arch>(s + i).store_unaligned(dst + i);
    if (i < n) {
      T tmp[W] = {};
      float out[W];
      std::memcpy(tmp, s + i, (n - i) * sizeof(T));
      load_as_f32<Arch>(tmp).store_unaligned(out);
      std::memcpy(dst + i, out, (n - i) * sizeof(float));
    }
  });
}

template <class Arch>
void WidenI8Row<Arch>::operator()(Arch, const std::int8_t* src, float* dst, std::size_t n) const {
  constexpr std::size_t W = fbatch<Arch>::size;
  for (std::size_t i = 0; i < n; i += W) {
    std::int8_t tmp[W] = {};
    float out[W];
    std::memcpy(tmp, src + i, (n - i < W ? n - i : W));
    load_as_f32<Arch>(tmp).store_unaligned(out);
    std::memcpy(dst + i, out, (n - i < W ? n - i : W) * sizeof(float));
  }
}

template <class Arch>
void Exp2Row<Arch>::operator()(Arch, const float* x, float* y, std::size_t n) const {
  using B = fbatch<Arch>;
  constexpr std::size_t W = B::size;
  std::size_t i = 0;
  for (; i + W <= n; i += W) exp2<Arch>(B::load_unaligned(x + i)).store_unaligned(y + i);
  if (i < n) {
    float in[W] = {}, out[W];
    std::memcpy(in, x + i, (n - i) * sizeof(float));
    exp2<Arch>(B::load_unaligned(in)).store_unaligned(out);
    std::memcpy(y + i, out, (n - i) * sizeof(float));
  }
}

template <class Arch>
void ClampScoreRow<Arch>::operator()(Arch, const float* x, float* y, std::size_t n, float limit, bool rank) const {
  using B = fbatch<Arch>;
  constexpr std::size_t W = B::size;
  for (std::size_t i = 0; i < n; i += W) {
    float in[W] = {}, out[W];
    std::memcpy(in, x + i, (n - i < W ? n - i : W) * sizeof(float));
    const B v = B::load_unaligned(in);
    (rank ? rank_score<Arch>(v, limit) : clamp_score<Arch>(v, limit)).store_unaligned(out);
    std::memcpy(y + i, out, (n - i < W ? n - i : W) * sizeof(float));
  }
}

template <class Arch>
std::size_t SumRows<Arch>::operator()(Arch, const float* rows, float* sums) const {
  using B = fbatch<Arch>;
  constexpr std::size_t W = B::size;
  B r[W];
  for (std::size_t i = 0; i < W; ++i) r[i] = B::load_unaligned(rows + i * W);
  row_sums<Arch>(r).store_unaligned(sums);
  return W;
}

}  // namespace sparq::kernels
