// Checks the score-batch layout the AVX-512 dense loops write (rows16::scores,
// rows16::scores_bf16): sc[b * 16 + h * P + p] = q_h . k_{b P + p} for the g heads of a head
// tile, P = 16 / g, batches b < ceil(n / P), rows past n repeating row 0.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <vector>

namespace sparq::test {

// term(h, p, i) is the exact product q_h[i] k_p[i] in double; each score must be within
// rel * sum_i |term| of sum_i term. Stops at the first miss.
template <class Term>
void expect_score_batches(const std::vector<float>& sc, std::size_t g, std::size_t d, std::size_t n, double rel,
                          Term term) {
  const std::size_t P = 16 / g, batches = (n + P - 1) / P;
  ASSERT_GE(sc.size(), batches * 16);
  for (std::size_t b = 0; b < batches; ++b)
    for (std::size_t h = 0; h < g; ++h)
      for (std::size_t pl = 0; pl < P; ++pl) {
        const std::size_t p = b * P + pl < n ? b * P + pl : 0;
        double want = 0, mag = 0;
        for (std::size_t i = 0; i < d; ++i) {
          const double t = term(h, p, i);
          want += t;
          mag += std::abs(t);
        }
        ASSERT_NEAR(sc[b * 16 + h * P + pl], want, rel * mag + 1e-30)
            << "g=" << g << " d=" << d << " n=" << n << " batch " << b << " head " << h << " row " << pl;
      }
}

}  // namespace sparq::test
