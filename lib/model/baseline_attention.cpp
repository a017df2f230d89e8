#include "model/baseline_attention.hpp"

#include <oneapi/tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "eval/equal_bytes.hpp"
#include "eval/oracle.hpp"
#include "eval/sink_window.hpp"
#include "model/cache_rows.hpp"
#include "model/linear.hpp"
#include "model/vector_math.hpp"

namespace sparq::model {

void baseline_attention(const KVCache& cache, SeqId seq, std::size_t layer, const Baseline& method,
                        std::span<const float> q, std::span<float> out, std::size_t n_heads,
                        std::vector<eval::H2OCache>* h2o, std::size_t* rows_read) {
  const auto lock = cache.lock_for_read(seq);
  const LayerView v = cache.view(seq, layer);
  const std::size_t S = v.length, d = v.head_dim, n_kv = v.kv_heads, g = n_heads / n_kv;
  const float scale = 1.0f / std::sqrt(float(d));
  const std::size_t budget = eval::equal_bytes_budget(d, S, method.ratio);
  // One task per KV head: its g query heads share the positions (and H2O's state).
  tbb::parallel_for(std::size_t{0}, n_kv, [&](std::size_t kh) {
    const float* qh = q.data() + kh * g * d;
    float* yh = out.data() + kh * g * d;
    std::vector<std::uint32_t> positions;
    std::vector<float> probs;  // [g][positions]
    if (method.kind == BaselineKind::oracle) {
      // True attention over every position, then the top-k' of the group's summed mass.
      std::vector<float> logits(g * S, 0.0f);
      if (v.dtype == DType::f32 && has_d_major(v.layouts) && v.d_major_type == DMajorType::same) {
        // Scores straight from the d-major key copy: no copy, no packing (this was a
        // row copy plus an sgemm that packed all S keys again, per oracle and step).
        std::vector<float> qs(qh, qh + g * d);
        for (float& x : qs) x *= scale;
        for (std::size_t b = 0; b < v.blocks_per_head; ++b)
          scores_dmajor(qs.data(), g, d, reinterpret_cast<const float*>(v.key_block_d_major(kh, b)), v.d_major_stride,
                        v.rows_in_block(b), logits.data() + b * v.block_tokens, S);
      } else {
        std::vector<float> keys(S * d);
        read_rows(v, kh, /*keys=*/true, 0, S, keys.data());
        gemm_nt(g, S, d, scale, qh, d, keys.data(), d, 0.0f, logits.data(), S);
      }
      std::vector<float> p(logits);
      std::vector<double> mass(S, 0.0);
      for (std::size_t h = 0; h < g; ++h) {
        (void)softmax_inplace(p.data() + h * S, S);
        for (std::size_t j = 0; j < S; ++j) mass[j] += double(p[h * S + j]);
      }
      positions = eval::oracle_positions(mass, budget);
      probs.resize(g * positions.size());
      for (std::size_t h = 0; h < g; ++h)
        for (std::size_t i = 0; i < positions.size(); ++i)
          probs[h * positions.size() + i] = logits[h * S + positions[i]];
    } else {
      if (method.kind == BaselineKind::h2o) {
        eval::H2OCache& c = (*h2o)[kh];
        c.add();
        c.evict_to(budget);
        positions = c.kept();
      } else {
        positions = eval::sink_window_positions(S, budget, method.sinks);
      }
      std::vector<float> keys(positions.size() * d);
      gather_rows(v, kh, /*keys=*/true, positions, keys.data());
      probs.resize(g * positions.size());
      gemm_nt(g, positions.size(), d, scale, qh, d, keys.data(), d, 0.0f, probs.data(), positions.size());
    }
    const std::size_t n = positions.size();
    for (std::size_t h = 0; h < g; ++h) (void)softmax_inplace(probs.data() + h * n, n);
    std::vector<float> values(n * d);
    gather_rows(v, kh, /*keys=*/false, positions, values.data());
    gemm_nn(g, d, n, probs.data(), n, values.data(), d, yh, d, false);
    if (method.kind == BaselineKind::h2o) {
      std::vector<double> group(n, 0.0);
      for (std::size_t h = 0; h < g; ++h)
        for (std::size_t i = 0; i < n; ++i) group[i] += double(probs[h * n + i]);
      (*h2o)[kh].accumulate(group);
    }
    if (rows_read) rows_read[kh] = n;
  });
}

}  // namespace sparq::model
