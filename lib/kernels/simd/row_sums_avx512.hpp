// RowSums for xsimd's avx512bw batches (see row_sums16_avx512.hpp).
#pragma once

#include <immintrin.h>

#include <xsimd/xsimd.hpp>

#include "kernels/simd/row_sums16_avx512.hpp"

namespace sparq::kernels {

template <>
struct RowSums<xsimd::avx512bw> {
  using batch = xsimd::batch<float, xsimd::avx512bw>;
  static batch sum(const batch* row) noexcept {
    __m512 r[16];
    for (int i = 0; i < 16; ++i) r[i] = row[i];
    return row_sums16_avx512(r);
  }
};

}  // namespace sparq::kernels
