// SparQ decode on cold data, against dense decode on the same cache in the same run.
//
// Grid: S in {1k, 4k, 16k, 64k, 128k}; GQA 32/8 and MHA 32/32 at d = 128; f32/f16/bf16;
// batch 1 and 8; threads 1 .. hardware threads; every ISA this CPU runs; methods dense (the baseline) and SparQ
// at compression ratio 4, 8, 16 (r = d/c, k = S/2c, l = k/4, shared GQA selection).
// The cache keeps both key layouts (SparQ's fast path). Combos whose cache exceeds
// kBudget are skipped.
//
// Cold data: every call reads another layer; enough layers that one rotation of SparQ
// at ratio 16 reads >= kRotation bytes (8x a 32 MiB L3), capped by kBudget (then the
// `cold` counter is 0). Each fixture checks SparQ's output once against
// reference::sparq_decode (on the kernel's own selection) before timing.
//
// Hot rows (/hot): one KV head of the GQA shape (4 query heads) at S = 4k, one layer, so
// every call finds the cache (3 MiB in bf16) in L2 or L3: the kernels' compute
// ceiling, with the same counters. GB_per_s is then the bytes a cold call would move
// over the hot time; pct_read_bw above 100 means compute alone is faster than DRAM.
// Where cold time is about hot time plus the memory floor, the kernels do not overlap
// arithmetic with DRAM transfers (docs/performance.md, "Compute ceilings").
//
// Counters: MB_per_call (bytes the profile counts as touched), GB/s and pct_read_bw
// (of the read bandwidth measured in this process with the same thread count,
// sparq::measure_read_bandwidth), speedup_vs_dense (dense's median time on the same data
// and threads, measured just before), and per-phase time shares from profiled calls
// after the timed loop: share_stage1, share_topk, share_stage2, share_realloc.
//
//   build-sparq/bench/sparq_decode_bench --benchmark_filter='S:65536/heads:32x8/bf16/batch:1'
#include <benchmark/benchmark.h>
#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "bench_cache.hpp"
#include "bench_isas.hpp"
#include "reference/reference.hpp"
#include "sparq/decode.hpp"

namespace sparq::bench {
namespace {

constexpr std::size_t kHeadDim = 128;
constexpr std::size_t kBlockTokens = 256;
constexpr std::size_t kBudget = std::size_t{10} << 30;     // cache bytes, of the 24 GiB machine
constexpr std::size_t kRotation = std::size_t{256} << 20;  // SparQ bytes read per rotation

struct Config {
  std::size_t S, q_heads, kv_heads;
  DType dtype;
  std::size_t batch;
  bool hot = false;  // one layer, reread by every call
  // What SparQ at ratio 16 reads per call (the least of the methods): S·r·b + 2·k·d·b.
  [[nodiscard]] std::size_t min_bytes_per_call() const {
    const std::size_t r = kHeadDim / 16, k = std::max<std::size_t>(1, S / 32);
    return (S * r + 2 * k * kHeadDim) * size_of(dtype) * kv_heads * batch;
  }
  [[nodiscard]] std::size_t layer_bytes() const {
    const std::size_t blocks = (S + kBlockTokens - 1) / kBlockTokens;
    return batch * kv_heads * blocks * 3 * kBlockTokens * kHeadDim * size_of(dtype);
  }
  [[nodiscard]] std::size_t layers() const {
    if (hot) return 1;
    const std::size_t want = std::max<std::size_t>(1, (kRotation + min_bytes_per_call() - 1) / min_bytes_per_call());
    return std::max<std::size_t>(1, std::min(want, kBudget / layer_bytes()));
  }
  [[nodiscard]] bool cold() const { return !hot && layers() * min_bytes_per_call() >= kRotation; }
  bool operator<(const Config& o) const {
    return std::tie(S, q_heads, kv_heads, dtype, batch, hot) <
           std::tie(o.S, o.q_heads, o.kv_heads, o.dtype, o.batch, o.hot);
  }
};

struct Fixture {
  Config cfg;
  std::unique_ptr<KVCache> cache;
  std::vector<SeqId> seqs;
  std::vector<float> q, out;
};

// One fixture alive at a time; consecutive benchmarks (threads, methods) share it.
Fixture& fixture_for(const Config& c) {
  static std::unique_ptr<Fixture> current;
  if (current && !(current->cfg < c) && !(c < current->cfg)) return *current;
  current.reset();
  auto f = std::make_unique<Fixture>();
  f->cfg = c;
  // Some positions stand out (as real attention has heavy hitters), so SparQ's
  // selection is not a near-uniform lottery.
  ColdCaches cold = build_cold_caches({.config = {.layers = c.layers(),
                                                  .kv_heads = c.kv_heads,
                                                  .head_dim = kHeadDim,
                                                  .dtype = c.dtype,
                                                  .block_tokens = kBlockTokens,
                                                  .layouts = KeyLayout::both},
                                       .seq_len = c.S,
                                       .batch = c.batch,
                                       .heavy_every = 37});
  f->cache = std::move(cold.cache);
  f->seqs = std::move(cold.seqs);
  f->q.resize(c.batch * c.q_heads * kHeadDim);
  fill_synthetic(f->q, 3);
  for (float& x : f->q) x *= 4.0f;
  f->out.resize(f->q.size());
  current = std::move(f);
  return *current;
}

// Checks KV head 0 of the first sequence against the reference; "" when it matches.
std::string check_against_reference(Fixture& f, const SparQ& m) {
  const Config& c = f.cfg;
  const std::size_t g = c.q_heads / c.kv_heads, d = kHeadDim;
  std::vector<float> out(g * d), alpha(g);
  std::vector<std::vector<std::uint32_t>> sel;
  const DecodeItem item{
      .seq = f.seqs[0], .q = std::span(f.q).first(g * d), .out = out, .alpha = alpha, .selected = &sel};
  decode(*f.cache, 0, m, {&item, 1}, {.kv_head_begin = 0, .kv_head_end = 1});
  const LayerView v = f.cache->view(f.seqs[0], 0);
  const SparQResolved p = m.resolve(d, c.S, g);
  const double scale = 1.0 / std::sqrt(double(d));
  const auto ref = reference::sparq_decode(v, item.q, 0, 1, g, scale, p);
  for (std::size_t h = 0; h < g; ++h) {
    // The reference on the kernel's own selection (near-tied boundaries may differ).
    double a = 0;
    for (std::uint32_t j : sel[h]) a += ref.approx_scores[h][j];
    if (sel[h].size() == c.S) a = 1.0;
    std::vector<double> y(d);
    reference::attend(v, 0, item.q.subspan(h * d, d), sel[h], scale, y);
    if (p.reallocation)
      for (std::size_t i = 0; i < d; ++i) y[i] = a * y[i] + (1 - a) * double(v.value_mean[i]);
    double num = 0, den = 0;
    for (std::size_t i = 0; i < d; ++i) {
      num += (out[h * d + i] - y[i]) * (out[h * d + i] - y[i]);
      den += y[i] * y[i];
    }
    if (std::sqrt(num / den) > 1e-5 || std::abs(alpha[h] - a) > 1e-5)
      return "output differs from reference::sparq_decode, head " + std::to_string(h);
  }
  return "";
}

// Seconds per dense call of every repetition, by (config, threads).
std::map<std::tuple<Config, std::size_t, Isa>, std::vector<double>>& dense_times() {
  static std::map<std::tuple<Config, std::size_t, Isa>, std::vector<double>> m;
  return m;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// ratio 0: dense.
void run(benchmark::State& state, Config c, std::size_t threads, double ratio, Isa isa) {
  const ScopedIsa scoped(isa);
  Fixture& f = fixture_for(c);
  const bool dense = ratio == 0;
  Method method = Dense{};
  if (!dense) {
    method = SparQ::for_ratio(ratio);
    static std::map<std::tuple<Config, double, Isa>, std::string> checked;
    auto it = checked.find({c, ratio, isa});
    if (it == checked.end())
      it = checked.emplace(std::tuple{c, ratio, isa}, check_against_reference(f, std::get<SparQ>(method))).first;
    if (!it->second.empty()) {
      state.SkipWithError(it->second.c_str());
      return;
    }
  }
  const double read_bw = read_bandwidth_gbs(threads);
  tbb::task_arena arena{int(threads)};
  const std::size_t n_q = c.q_heads * kHeadDim;
  std::vector<DecodeItem> items;
  for (std::size_t b = 0; b < c.batch; ++b)
    items.push_back(
        {.seq = f.seqs[b], .q = std::span(f.q).subspan(b * n_q, n_q), .out = std::span(f.out).subspan(b * n_q, n_q)});
  const std::size_t layers = c.layers();
  std::size_t layer = 0;
  auto call = [&](Profile* profile) {
    decode(*f.cache, layer, method, items, {.profile = profile, .arena = &arena});
    benchmark::ClobberMemory();
    layer = layer + 1 == layers ? 0 : layer + 1;
  };
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) call(nullptr);
  const double per_call =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / double(state.iterations());

  // Bytes and phase shares from profiled calls (after timing, so the timed loop runs
  // without a profile).
  Profile prof;
  const std::size_t n_prof = std::clamp<std::size_t>(std::size_t(state.iterations()), 1, 20);
  for (std::size_t i = 0; i < n_prof; ++i) call(&prof);
  const double bytes = double(prof.total().bytes_read) / double(n_prof);
  set_bandwidth_counters(state, bytes, per_call, read_bw);
  state.counters["cold"] = c.cold();
  if (dense) {
    dense_times()[{c, threads, isa}].push_back(per_call);
    return;
  }
  const double total = prof.total().seconds;
  if (total > 0) {
    state.counters["share_stage1"] = prof[Phase::stage1].seconds / total;
    state.counters["share_topk"] = prof[Phase::topk].seconds / total;
    state.counters["share_stage2"] = prof[Phase::stage2].seconds / total;
    state.counters["share_realloc"] = prof[Phase::reallocation].seconds / total;
  }
  const double dense_s = median(dense_times()[{c, threads, isa}]);
  if (dense_s > 0) state.counters["speedup_vs_dense"] = dense_s / per_call;
}

void register_one(const Config& c, std::size_t threads, Isa isa, double ratio) {
  const std::string name = "sparq_decode/S:" + std::to_string(c.S) + "/heads:" + std::to_string(c.q_heads) + "x" +
                           std::to_string(c.kv_heads) + "/" + std::string(to_string(c.dtype)) +
                           "/batch:" + std::to_string(c.batch) + "/threads:" + std::to_string(threads) +
                           "/isa:" + std::string(to_string(isa)) + (c.hot ? "/hot/" : "/") +
                           (ratio == 0 ? std::string("dense") : "ratio:" + std::to_string(int(ratio)));
  apply_decode_timing(benchmark::RegisterBenchmark(
      name.c_str(), [c, threads, ratio, isa](benchmark::State& s) { run(s, c, threads, ratio, isa); }));
}

void register_all() {
  const std::size_t max_threads = std::max(1u, std::thread::hardware_concurrency());
  struct Heads {
    std::size_t q, kv;
  };
  for (std::size_t S : {1024, 4096, 16384, 65536, 131072})
    for (Heads h : {Heads{32, 8}, Heads{32, 32}})
      for (DType dtype : {DType::bf16, DType::f16, DType::f32})
        for (std::size_t batch : {1, 8}) {
          const Config c{S, h.q, h.kv, dtype, batch};
          if (c.layer_bytes() > kBudget) continue;
          for (std::size_t t = 1; t <= max_threads; ++t)
            for (Isa isa : runnable_isas())
              for (double ratio : {0.0, 4.0, 8.0, 16.0}) register_one(c, t, isa, ratio);  // dense first
        }
  for (DType dtype : {DType::bf16, DType::f16, DType::f32})
    for (Isa isa : runnable_isas())
      for (double ratio : {0.0, 8.0}) register_one({4096, 4, 1, dtype, 1, true}, 1, isa, ratio);
}

}  // namespace
}  // namespace sparq::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  sparq::bench::register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
