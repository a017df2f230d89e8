#include "model/attention_mass.hpp"

#include <oneapi/tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "model/cache_rows.hpp"
#include "model/linear.hpp"
#include "model/vector_math.hpp"

namespace sparq::model {

namespace {

// col[j] += softmax(l[0, n))[j]; l is overwritten.
__attribute__((target_clones("avx512f", "avx2", "default"))) void softmax_into_columns(float* l, std::size_t n,
                                                                                       double* col) {
  const double inv = 1.0 / double(exp_shifted_inplace(l, n));
  for (std::size_t j = 0; j < n; ++j) col[j] += double(l[j]) * inv;
}

}  // namespace

void add_attention_mass(const KVCache& cache, SeqId seq, std::size_t layer, std::span<const float> q, std::size_t n_new,
                        std::size_t n_heads, std::vector<std::vector<double>>& mass) {
  const auto lock = cache.lock_for_read(seq);
  const LayerView v = cache.view(seq, layer);
  const std::size_t S = v.length, d = v.head_dim, n_kv = v.kv_heads, g = n_heads / n_kv;
  const std::size_t p0 = S - n_new;  // position of the chunk's first query
  const float scale = 1.0f / std::sqrt(float(d));
  mass.resize(n_kv);
  for (auto& m : mass) m.resize(S, 0.0);
  // Queries in groups of kQueries (all g heads of each): their logits over the positions
  // they can see, kQueries * g rows of at most S floats.
  constexpr std::size_t kQueries = 32;
  // One task per KV head: each writes only its own mass row, so the sums are the same
  // whatever the thread count.
  tbb::parallel_for(std::size_t{0}, n_kv, [&](std::size_t kh) {
    std::vector<float> keys(S * d), qs(kQueries * g * d), logits(kQueries * g * S);
    read_rows(v, kh, /*keys=*/true, 0, S, keys.data());
    std::vector<double>& col = mass[kh];
    for (std::size_t t0 = 0; t0 < n_new; t0 += kQueries) {
      const std::size_t nt = std::min(kQueries, n_new - t0);
      const std::size_t width = p0 + t0 + nt;  // positions the group's last query sees
      for (std::size_t t = 0; t < nt; ++t)
        std::copy_n(q.data() + ((t0 + t) * n_heads + kh * g) * d, g * d, qs.data() + t * g * d);
      gemm_nt(nt * g, width, d, scale, qs.data(), d, keys.data(), d, 0.0f, logits.data(), width);
      for (std::size_t row = 0; row < nt * g; ++row) {
        const std::size_t n = p0 + t0 + row / g + 1;  // causal: positions [0, n)
        softmax_into_columns(logits.data() + row * width, n, col.data());
      }
    }
  });
}

}  // namespace sparq::model
