// Internal: the few vector loops of the model runtime's own attention code (H2O's prefill
// scores, the baselines): softmax over long rows and dot products against the cache's
// d-major key copy. The tools library is built for the baseline ISA, so these are
// compiled per ISA with target_clones; each is written in explicit lanes, so every
// clone performs the same operations in the same order: bit-identical on every ISA.
#pragma once

#include <cstddef>

namespace sparq::model {

// l[j] = exp(l[j] - max(l)) for j < n (n >= 1), summed in fixed lanes. Returns the sum (> 0).
float exp_shifted_inplace(float* l, std::size_t n);

// l[j] = softmax(l)[j] for j < n (n >= 1). Returns the sum of exp(l - max) (> 0).
float softmax_inplace(float* l, std::size_t n);

// out[h * ldo + j] += q[h][i] * k[i * ld + j] summed over i < d, for h < g and j < n:
// the scores of g queries against n positions of a d-major key block (row i holds
// component i of the block's positions, ld elements apart). out must be initialized.
void scores_dmajor(const float* q, std::size_t g, std::size_t d, const float* k, std::size_t ld, std::size_t n,
                   float* out, std::size_t ldo);

}  // namespace sparq::model
