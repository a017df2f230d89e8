// run_bench_model: the `sparq bench-model` measurement (bench_model.hpp).
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <random>
#include <string>

#include "sparq/error.hpp"
#include "sparq/tools/cold_caches.hpp"
#include "sparq/tools/e2e/bench_model.hpp"
#include "sparq/tools/roofline.hpp"

namespace sparq::e2e {

std::optional<MethodSpec> parse_method_spec(std::string_view text) {
  if (text == "dense") return MethodSpec{"dense", Dense{}};
  if (text == "sparq") return MethodSpec{"sparq:8", SparQ::for_ratio(8)};
  if (!text.starts_with("sparq:")) return std::nullopt;
  const std::string num(text.substr(6));
  std::size_t used = 0;
  double ratio = 0.0;
  try {
    ratio = std::stod(num, &used);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (used != num.size() || !std::isfinite(ratio) || ratio < 1.0) return std::nullopt;
  return MethodSpec{fmt::format("sparq:{}", ratio), SparQ::for_ratio(ratio)};
}

StorageModel storage_model(const BenchModelOptions& o) noexcept {
  return {.layouts = o.layout, .d_major_type = o.d_major_type, .block_tokens = o.block_tokens};
}

namespace {

// One layer's cache as the decoder builds it (capacity aside).
CacheConfig layer_cache_config(const LayerShape& s, DType kv_dtype, const StorageModel& storage) {
  return {.kv_heads = s.kv_heads,
          .head_dim = s.head_dim,
          .dtype = kv_dtype,
          .block_tokens = storage.block_tokens,
          .layouts = storage.layouts,
          .d_major_type = storage.d_major_type};
}

}  // namespace

std::uint64_t cache_bytes_per_layer(const LayerShape& s, std::size_t tokens, DType kv_dtype,
                                    const StorageModel& storage) {
  return stored_bytes_per_layer(layer_cache_config(s, kv_dtype, storage), tokens);
}

TokenBytes token_bytes(const LayerShape& s, WeightFormat weights, bool classifier, const Method& method,
                       std::size_t context, DType kv_dtype, const StorageModel& storage) {
  const ModelShape attn{.layers = 1, .q_heads = s.q_heads, .kv_heads = s.kv_heads, .head_dim = s.head_dim};
  TokenBytes b;
  b.weights = s.model_layers * layer_weight_bytes(s, weights) + (classifier ? classifier_bytes(s, weights) : 0);
  b.attention = s.model_layers * model_cost(method, attn, context, kv_dtype, 1, storage).bytes;
  return b;
}

namespace {

using Clock = std::chrono::steady_clock;

std::uint64_t mem_available() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::uint64_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit)
    if (key == "MemAvailable:") return kb << 10;
  return 0;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void check(const BenchModelOptions& o) {
  o.shape.validate();
  const auto bad = [](const std::string& what) { throw Error(ErrorCode::invalid_argument, what); };
  if (o.contexts.empty()) bad("contexts: at least one context length is needed");
  for (const std::size_t c : o.contexts)
    if (c < 1 || c > (std::size_t{1} << 24)) bad(fmt::format("context={} is invalid: must be in [1, 16M]", c));
  if (o.methods.empty()) bad("methods: at least one method is needed");
  if (o.threads.empty()) bad("threads: at least one thread count is needed");
  for (const std::size_t t : o.threads)
    if (t < 1 || t > 4096) bad(fmt::format("threads={} is invalid: must be in [1, 4096]", t));
  if (o.repeats < 1 || o.repeats > 10000) bad(fmt::format("repeats={} is invalid: must be in [1, 10000]", o.repeats));
  if (!(o.memory_fraction > 0.0 && o.memory_fraction <= 1.0))
    bad(fmt::format("memory fraction {} is invalid: must be in (0, 1]", o.memory_fraction));
  if (o.block_tokens < 1 || o.block_tokens > (1u << 20))
    bad(fmt::format("block_tokens={} is invalid: must be in [1, 1048576]", o.block_tokens));
  layer_cache_config(o.shape, o.kv_dtype, storage_model(o)).validate();  // storage the cache would refuse
  if (o.layers > 4096) bad(fmt::format("layers={} is invalid: must be in [1, 4096] (0: fit memory)", o.layers));
  for (const MethodSpec& m : o.methods)
    if (const auto* sp = std::get_if<SparQ>(&m.method))
      for (const std::size_t c : o.contexts)
        (void)sp->resolve(o.shape.head_dim, c + 1, o.shape.q_heads / o.shape.kv_heads);
}

}  // namespace

LayerPlan plan_layers(const BenchModelOptions& o) {
  check(o);
  const LayerShape& s = o.shape;
  const std::size_t longest = *std::max_element(o.contexts.begin(), o.contexts.end());
  const MachineInfo machine = describe_machine();
  LayerPlan p;
  p.available_bytes = mem_available();
  p.budget_bytes = std::uint64_t(double(p.available_bytes) * o.memory_fraction);
  const std::uint64_t read_buffer = o.bw_buffer_bytes ? o.bw_buffer_bytes : default_read_buffer_bytes(machine);
  const std::uint64_t pool = 2 * (1024 + 61) * s.kv_dim() * sizeof(float);
  p.fixed_bytes = read_buffer + (o.classifier ? classifier_bytes(s, o.weights) : 0) + pool;
  p.per_layer_bytes =
      layer_weight_bytes(s, o.weights) + cache_bytes_per_layer(s, longest + 1, o.kv_dtype, storage_model(o));
  const std::uint64_t fit = p.budget_bytes > p.fixed_bytes ? (p.budget_bytes - p.fixed_bytes) / p.per_layer_bytes : 0;
  if (o.layers) {
    p.layers = o.layers;
    p.fits = o.layers <= fit;
  } else {
    if (fit < 1)
      throw Error(ErrorCode::capacity_exhausted,
                  fmt::format("one {} layer at context {} needs {:.2f} GiB (+{:.2f} GiB fixed), but {:.0f}% of the "
                              "available memory is {:.2f} GiB: use shorter contexts",
                              s.name, longest, double(p.per_layer_bytes) / double(1ull << 30),
                              double(p.fixed_bytes) / double(1ull << 30), o.memory_fraction * 100,
                              double(p.budget_bytes) / double(1ull << 30)));
    p.layers = std::size_t(std::min<std::uint64_t>(fit, s.model_layers));
  }
  return p;
}

BenchModelResult run_bench_model(const BenchModelOptions& o, const BenchProgress& progress) {
  BenchModelResult res;
  res.plan = plan_layers(o);
  const LayerShape& s = o.shape;
  res.machine = describe_machine();
  res.isa = active_isa();
  if (o.weights == WeightFormat::q8) res.q8_kernel = resolve_q8_kernel(o.q8_kernel);
  const auto say = [&](const std::string& m) { return progress ? progress(m) : true; };
  std::vector<std::size_t> contexts = o.contexts;
  std::sort(contexts.begin(), contexts.end());
  contexts.erase(std::unique(contexts.begin(), contexts.end()), contexts.end());
  const std::size_t longest = contexts.back();
  const std::size_t max_threads = *std::max_element(o.threads.begin(), o.threads.end());

  if (!say(fmt::format("allocating the read-bandwidth buffer"))) return res.interrupted = true, res;
  const ReadBandwidthMeter meter(o.bw_buffer_bytes, max_threads);
  res.read_buffer_bytes = meter.buffer_bytes();

  if (!say(fmt::format("building {} random {} layers ({} weights{})", res.plan.layers, s.name, to_string(o.weights),
                       o.classifier ? " and the classifier" : "")))
    return res.interrupted = true, res;
  auto t0 = Clock::now();
  std::unique_ptr<RandomDecoder> model;
  {
    tbb::task_arena build_arena{static_cast<int>(max_threads)};
    build_arena.execute([&] {
      model = std::make_unique<RandomDecoder>(DecoderConfig{.shape = s,
                                                            .layers = res.plan.layers,
                                                            .weights = o.weights,
                                                            .q8_kernel = o.q8_kernel,
                                                            .classifier = o.classifier,
                                                            .kv_dtype = o.kv_dtype,
                                                            .block_tokens = o.block_tokens,
                                                            .layout = o.layout,
                                                            .d_major_type = o.d_major_type,
                                                            .capacity_tokens = longest + 1,
                                                            .seed = o.seed});
    });
  }
  res.build_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  res.weight_bytes = model->layer_matvec_bytes() + model->head_matvec_bytes();

  t0 = Clock::now();
  int shown = -1;
  bool stop = false;
  model->fill(longest, [&](double f) {
    const int tenth = int(f * 10);
    if (tenth != shown) {
      shown = tenth;
      stop =
          !say(fmt::format("filling the KV cache: {} layers x {} tokens, {}%", res.plan.layers, longest, tenth * 10));
    }
    return !stop;
  });
  res.fill_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  res.cache_bytes = model->cache().memory_usage().total();
  if (stop) return res.interrupted = true, res;

  std::vector<float> x(s.d_model), out(model->classifier() ? s.vocab : s.d_model);
  {
    std::mt19937 rng(std::uint32_t(o.seed + 99));
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (float& v : x) v = normal(rng);
  }
  const double scale = double(s.model_layers) / double(res.plan.layers);
  const std::uint64_t matvec_bytes = res.weight_bytes;

  std::vector<BenchRow> rows;
  for (auto ci = contexts.rbegin(); ci != contexts.rend() && !res.interrupted; ++ci) {
    const std::size_t context = *ci;
    model->truncate_to(context);
    for (const std::size_t threads : o.threads) {
      if (!say(fmt::format("context {}, {} thread{}: measuring", context, threads, threads > 1 ? "s" : ""))) {
        res.interrupted = true;
        break;
      }
      tbb::task_arena arena{static_cast<int>(threads)};
      const double bw_before = meter.measure({.thread_counts = {threads}}).samples.front().gb_per_s;
      const std::size_t n = o.methods.size();
      std::vector<std::vector<StepTimes>> samples(n);
      std::vector<Profile> profiles(n);
      const auto run_step = [&](std::size_t mi, bool keep) {
        Profile scratch;
        const StepTimes t = model->step(x, o.methods[mi].method, &arena, out, keep ? &profiles[mi] : &scratch);
        model->truncate_to(context);
        if (keep) samples[mi].push_back(t);
      };
      for (std::size_t mi = 0; mi < n; ++mi) run_step(mi, false);  // warm-up
      for (std::size_t rep = 0; rep < o.repeats; ++rep)
        for (std::size_t i = 0; i < n; ++i) run_step(rep % 2 ? n - 1 - i : i, true);
      const double bw_after = meter.measure({.thread_counts = {threads}}).samples.front().gb_per_s;

      const std::size_t first = rows.size();
      for (std::size_t mi = 0; mi < n; ++mi) {
        const auto& ss = samples[mi];
        BenchRow r;
        r.threads = threads;
        r.context = context;
        r.method = o.methods[mi].label;
        r.steps = ss.size();
        const auto med = [&](auto f) {
          std::vector<double> v;
          for (const StepTimes& t : ss) v.push_back(f(t));
          return median(v);
        };
        r.median = {.matvec = med([](const StepTimes& t) { return t.matvec; }),
                    .attention = med([](const StepTimes& t) { return t.attention; }),
                    .append = med([](const StepTimes& t) { return t.append; }),
                    .other = med([](const StepTimes& t) { return t.other; }),
                    .head = med([](const StepTimes& t) { return t.head; }),
                    .total = med([](const StepTimes& t) { return t.total; })};
        r.token_seconds = med([&](const StepTimes& t) { return scale * (t.total - t.head) + t.head; });
        r.tokens_per_s = 1.0 / r.token_seconds;
        r.attention_seconds = med([&](const StepTimes& t) { return scale * (t.attention + t.append); });
        r.rest_seconds = r.token_seconds - r.attention_seconds;
        r.model_bytes =
            token_bytes(s, o.weights, o.classifier, o.methods[mi].method, context + 1, o.kv_dtype, storage_model(o));
        r.matvec_bytes = matvec_bytes;
        r.attention_bytes = profiles[mi].total().bytes_read / std::max<std::size_t>(ss.size(), 1);
        r.read_gb_per_s_before = bw_before;
        r.read_gb_per_s_after = bw_after;
        r.read_gb_per_s = 0.5 * (bw_before + bw_after);
        r.matvec_gb_per_s = med([&](const StepTimes& t) { return double(matvec_bytes) / (t.matvec + t.head) * 1e-9; });
        r.matvec_bw_fraction = r.matvec_gb_per_s / r.read_gb_per_s;
        r.attention_gb_per_s = r.median.attention > 0 ? double(r.attention_bytes) / r.median.attention * 1e-9 : 0.0;
        r.attention_bw_fraction = r.attention_gb_per_s / r.read_gb_per_s;
        rows.push_back(std::move(r));
      }
      for (std::size_t i = first; i < rows.size(); ++i) {
        rows[i].speedup = rows[first].token_seconds / rows[i].token_seconds;
        rows[i].attention_speedup = rows[first].attention_seconds / rows[i].attention_seconds;
        rows[i].predicted_speedup = double(rows[first].model_bytes.total()) / double(rows[i].model_bytes.total());
      }
    }
  }
  // By thread count (as given), then context ascending, then method (as given).
  std::stable_sort(rows.begin(), rows.end(), [&](const BenchRow& a, const BenchRow& b) {
    const auto ti = [&](std::size_t t) { return std::find(o.threads.begin(), o.threads.end(), t) - o.threads.begin(); };
    if (a.threads != b.threads) return ti(a.threads) < ti(b.threads);
    return a.context < b.context;
  });
  res.rows = std::move(rows);
  return res;
}

}  // namespace sparq::e2e
