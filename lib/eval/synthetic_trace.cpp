#include "sparq/tools/eval/synthetic_trace.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <random>
#include <string>

#include "sparq/error.hpp"

namespace sparq::eval {

namespace {

// Standard normal from two uniform draws (Box-Muller): libstdc++'s and libc++'s
// normal_distribution differ, this does not.
class Normal {
 public:
  explicit Normal(std::uint64_t seed) : rng_(seed) {}
  double operator()() {
    const double u1 = (double(rng_() >> 11) + 1.0) * 0x1.0p-53, u2 = double(rng_() >> 11) * 0x1.0p-53;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }
  std::uint64_t next() { return rng_(); }

 private:
  std::mt19937_64 rng_;
};

}  // namespace

SyntheticTrace make_synthetic_trace(const SyntheticOptions& o) {
  o.shape.validate();
  if (o.positions < 2)
    throw Error(ErrorCode::invalid_argument,
                "positions=" + std::to_string(o.positions) + ": a synthetic trace needs at least 2");
  const std::size_t prefill = o.prefill ? o.prefill : o.positions - std::max<std::size_t>(1, o.positions / 8);
  if (o.needles > prefill)
    throw Error(ErrorCode::invalid_argument,
                "needles=" + std::to_string(o.needles) + " exceeds the prompt length " + std::to_string(prefill));
  const std::size_t n = o.positions, nq = o.shape.q_heads, nkv = o.shape.kv_heads, d = o.shape.head_dim;
  const std::size_t g = nq / nkv;

  SyntheticTrace s;
  s.manifest.shape = o.shape;
  s.manifest.positions = n;
  s.manifest.prefill = prefill;
  s.manifest.source = "sparq eval --make-synthetic (seed " + std::to_string(o.seed) + ", " + std::to_string(o.needles) +
                      " needles, needle logit " + std::to_string(o.needle_logit) + ")";
  s.manifest.validate();

  Normal normal(o.seed);
  // Needle positions: distinct, in the prompt, spread by a seeded shuffle.
  std::vector<std::uint32_t> all(prefill);
  for (std::size_t i = 0; i < prefill; ++i) all[i] = std::uint32_t(i);
  for (std::size_t i = 0; i < o.needles; ++i) std::swap(all[i], all[i + normal.next() % (prefill - i)]);
  s.needles.assign(all.begin(), all.begin() + std::ptrdiff_t(o.needles));
  std::sort(s.needles.begin(), s.needles.end());

  const double scale = 1.0 / std::sqrt(double(d));
  auto channel_scale = [](std::size_t i) { return i % 16 == 0 ? 4.0 : 1.0; };
  for (std::size_t l = 0; l < o.shape.layers; ++l) {
    TraceLayer t{.layer = l, .positions = n, .q_heads = nq, .kv_heads = nkv, .head_dim = d, .q = {}, .k = {}, .v = {}};
    t.q.resize(n * nq * d);
    t.k.resize(n * nkv * d);
    t.v.resize(n * nkv * d);
    std::vector<double> value_mean(nkv * d);  // values share a per-head mean, as in real models
    for (double& m : value_mean) m = normal();
    for (std::size_t j = 0; j < n * nkv * d; ++j) {
      t.k[j] = float(channel_scale(j % d) * normal());
      t.v[j] = float(value_mean[j % (nkv * d)] + normal());
    }
    for (std::size_t p = 0; p < n; ++p) {
      const std::size_t available = std::size_t(std::upper_bound(s.needles.begin(), s.needles.end(), p) -
                                                s.needles.begin());  // needles at positions <= p
      for (std::size_t h = 0; h < nq; ++h) {
        float* q = t.q.data() + (p * nq + h) * d;
        if (h % 2 == 1 || available == 0) {
          for (std::size_t i = 0; i < d; ++i) q[i] = float(channel_scale(i) * normal() * 0.5);
          continue;
        }
        const std::uint32_t needle = s.needles[(p + h / 2 + l) % available];
        const std::span<const float> key = t.key(needle, h / g);
        double norm2 = 0.0;
        for (float x : key) norm2 += double(x) * double(x);
        const double a = o.needle_logit / (scale * norm2);  // scale·q·K[n] = needle_logit
        const double noise = 0.1 * a * std::sqrt(norm2 / double(d));
        for (std::size_t i = 0; i < d; ++i) q[i] = float(a * key[i] + noise * normal());
      }
    }
    s.layers.push_back(std::move(t));
  }
  return s;
}

SyntheticTrace write_synthetic_trace(const std::filesystem::path& dir, const SyntheticOptions& options) {
  SyntheticTrace s = make_synthetic_trace(options);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error(ErrorCode::io_error, dir.string() + ": cannot create the directory: " + ec.message());
  for (const TraceLayer& t : s.layers) write_trace_layer(dir, s.manifest, t);
  write_trace_manifest(dir, s.manifest);
  return s;
}

}  // namespace sparq::eval
