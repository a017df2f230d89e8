#include "model/vector_math.hpp"

#include <limits>

#include "model/attention_mass.hpp"

namespace sparq::model {

namespace {
constexpr std::size_t kLanes = 16;
}

__attribute__((target_clones("avx512f", "avx2", "default"))) float exp_shifted_inplace(float* l, std::size_t n) {
  const std::size_t body = n / kLanes * kLanes;
  float lane[kLanes];
  for (float& x : lane) x = -std::numeric_limits<float>::infinity();
  for (std::size_t j = 0; j < body; j += kLanes)
    for (std::size_t u = 0; u < kLanes; ++u) lane[u] = l[j + u] > lane[u] ? l[j + u] : lane[u];
  float m = -std::numeric_limits<float>::infinity();
  for (float x : lane) m = x > m ? x : m;
  for (std::size_t j = body; j < n; ++j) m = l[j] > m ? l[j] : m;
  for (float& x : lane) x = 0.0f;
  for (std::size_t j = 0; j < body; j += kLanes)
    for (std::size_t u = 0; u < kLanes; ++u) {
      l[j + u] = exp_nonpositive(l[j + u] - m);
      lane[u] += l[j + u];
    }
  float sum = 0.0f;
  for (float x : lane) sum += x;
  for (std::size_t j = body; j < n; ++j) sum += (l[j] = exp_nonpositive(l[j] - m));
  return sum;
}

__attribute__((target_clones("avx512f", "avx2", "default"))) float softmax_inplace(float* l, std::size_t n) {
  const float sum = exp_shifted_inplace(l, n);
  const float inv = 1.0f / sum;
  for (std::size_t j = 0; j < n; ++j) l[j] *= inv;
  return sum;
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void scores_dmajor(const float* q, std::size_t g,
                                                                                std::size_t d, const float* k,
                                                                                std::size_t ld, std::size_t n,
                                                                                float* out, std::size_t ldo) {
  for (std::size_t i = 0; i < d; ++i) {
    const float* row = k + i * ld;
    for (std::size_t h = 0; h < g; ++h) {
      const float a = q[h * d + i];
      float* o = out + h * ldo;
      for (std::size_t j = 0; j < n; ++j) o[j] += a * row[j];
    }
  }
}

}  // namespace sparq::model
