// Dense decode throughput on cold data: GB/s and % of the read bandwidth measured in the
// same process with the same thread count (sparq::measure_read_bandwidth, pinned threads).
//
// Grid: S in {1k, 4k, 16k, 64k, 128k}; GQA 32/8 and MHA 32/32 at d = 128; f32/f16/bf16;
// batch 1 and 8; threads 1 .. hardware threads; every ISA this CPU runs (named in the
// benchmark: /isa:avx512). Combos whose cache exceeds kBudget are
// skipped. Cold: every call reads another layer, with enough layers that one rotation is
// >= 512 MiB (16x the 32 MiB L3); a call that alone reads more needs no rotation. The
// cache keeps only S-major keys (what dense decode reads; the d-major copy would only
// take memory). Each fixture checks its output once against reference::dense_decode.
// Report medians: --benchmark_repetitions is set to 5 per benchmark.
//
//   build-dense/bench/dense_decode_bench --benchmark_filter='S:16384/.*bf16'
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
#include "sparq/isa.hpp"

namespace sparq::bench {
namespace {

constexpr std::size_t kHeadDim = 128;
constexpr std::size_t kBlockTokens = 256;
constexpr std::size_t kBudget = std::size_t{14} << 30;     // cache bytes, of the 24 GiB machine
constexpr std::size_t kRotation = std::size_t{512} << 20;  // bytes read per rotation, >= 16x L3

struct Config {
  std::size_t S, q_heads, kv_heads;
  DType dtype;
  std::size_t batch;
  [[nodiscard]] std::size_t bytes_per_call() const { return 2 * S * kv_heads * kHeadDim * size_of(dtype) * batch; }
  [[nodiscard]] std::size_t layers() const {
    return std::max<std::size_t>(1, (kRotation + bytes_per_call() - 1) / bytes_per_call());
  }
  [[nodiscard]] std::size_t cache_bytes() const {
    const std::size_t blocks = (S + kBlockTokens - 1) / kBlockTokens;
    return layers() * batch * kv_heads * blocks * 2 * kBlockTokens * kHeadDim * size_of(dtype);
  }
  bool operator<(const Config& o) const {
    return std::tie(S, q_heads, kv_heads, dtype, batch) < std::tie(o.S, o.q_heads, o.kv_heads, o.dtype, o.batch);
  }
};

struct Fixture {
  Config cfg;
  std::unique_ptr<KVCache> cache;
  std::vector<SeqId> seqs;
  std::vector<float> q, out;
  std::map<Isa, std::string> errors;  // reference check per ISA: empty when it passed
};

// One fixture alive at a time; consecutive benchmarks (thread counts) share it.
Fixture& fixture_for(const Config& c) {
  static std::unique_ptr<Fixture> current;
  if (current && !(current->cfg < c) && !(c < current->cfg)) return *current;
  current.reset();
  auto f = std::make_unique<Fixture>();
  f->cfg = c;
  ColdCaches cold = build_cold_caches({.config = {.layers = c.layers(),
                                                  .kv_heads = c.kv_heads,
                                                  .head_dim = kHeadDim,
                                                  .dtype = c.dtype,
                                                  .block_tokens = kBlockTokens,
                                                  .layouts = KeyLayout::s_major},
                                       .seq_len = c.S,
                                       .batch = c.batch});
  f->cache = std::move(cold.cache);
  f->seqs = std::move(cold.seqs);
  f->q.resize(c.batch * c.q_heads * kHeadDim);
  fill_synthetic(f->q, 3);
  for (float& x : f->q) x *= 4.0f;  // a less uniform softmax
  f->out.resize(f->q.size());
  current = std::move(f);
  return *current;
}

// Checks once per ISA: KV head 0 of the first sequence against the reference.
const std::string& check_against_reference(Fixture& fx, Isa isa) {
  auto [it, fresh] = fx.errors.try_emplace(isa);
  if (!fresh) return it->second;
  const Config& c = fx.cfg;
  const std::size_t g = c.q_heads / c.kv_heads;
  std::vector<float> out(g * kHeadDim);
  const DecodeItem item{.seq = fx.seqs[0], .q = std::span(fx.q).first(g * kHeadDim), .out = out};
  decode(*fx.cache, 0, Dense{}, {&item, 1}, {.kv_head_begin = 0, .kv_head_end = 1});
  const auto ref =
      reference::dense_decode(fx.cache->view(fx.seqs[0], 0), item.q, 0, 1, g, 1.0 / std::sqrt(double(kHeadDim)));
  for (std::size_t h = 0; h < g; ++h) {
    double num = 0, den = 0;
    for (std::size_t i = 0; i < kHeadDim; ++i) {
      const double e = out[h * kHeadDim + i] - ref.out[h * kHeadDim + i];
      num += e * e;
      den += ref.out[h * kHeadDim + i] * ref.out[h * kHeadDim + i];
    }
    const double tol = 1e-5;  // f32 accumulation over the stored values
    if (std::sqrt(num / den) > tol)
      it->second = "output differs from reference::dense_decode, head " + std::to_string(h);
  }
  return it->second;
}

void run(benchmark::State& state, Config c, std::size_t threads, Isa isa) {
  const ScopedIsa scoped(isa);
  Fixture& f = fixture_for(c);
  if (const std::string& error = check_against_reference(f, isa); !error.empty()) {
    state.SkipWithError(error.c_str());
    return;
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
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    decode(*f.cache, layer, Dense{}, items, {.arena = &arena});
    benchmark::ClobberMemory();
    layer = layer + 1 == layers ? 0 : layer + 1;
  }
  const double per_call =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / double(state.iterations());
  set_bandwidth_counters(state, double(c.bytes_per_call()), per_call, read_bw);
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
          if (c.cache_bytes() > kBudget) continue;
          for (std::size_t t = 1; t <= max_threads; ++t)
            for (Isa isa : runnable_isas()) {
              const std::string name = "dense_decode/S:" + std::to_string(S) + "/heads:" + std::to_string(h.q) + "x" +
                                       std::to_string(h.kv) + "/" + std::string(to_string(dtype)) +
                                       "/batch:" + std::to_string(batch) + "/threads:" + std::to_string(t) +
                                       "/isa:" + std::string(to_string(isa));
              apply_decode_timing(
                  benchmark::RegisterBenchmark(name.c_str(), [c, t, isa](benchmark::State& s) { run(s, c, t, isa); }));
            }
        }
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
