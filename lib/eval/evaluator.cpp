// The replay loop. For each layer, positions are appended to the cache one at a time;
// H2O is simulated at every position (its scores need every query, prompt included);
// at each evaluated decode step dense runs first, then every method at every ratio.
#include "sparq/tools/eval/evaluator.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>

#include "eval/attention.hpp"
#include "eval/equal_bytes.hpp"
#include "eval/h2o.hpp"
#include "eval/oracle.hpp"
#include "eval/sink_window.hpp"
#include "sparq/decode.hpp"
#include "sparq/error.hpp"
#include "sparq/isa.hpp"
#include "sparq/kv_cache.hpp"

namespace sparq::eval {

namespace {

std::string str(std::size_t v) {
  return std::to_string(v);
}

void check_options(const TraceManifest& m, const EvalOptions& o) {
  if (o.ratios.empty()) throw Error(ErrorCode::invalid_argument, "no compression ratio given: need at least one");
  for (double r : o.ratios)
    if (!std::isfinite(r) || r < 1.0)
      throw Error(ErrorCode::invalid_argument,
                  "ratio=" + std::to_string(r) + " is invalid: compression ratios must be finite and >= 1");
  if (o.methods.empty()) throw Error(ErrorCode::invalid_argument, "no method given: need at least one");
  for (std::size_t l : o.layers)
    if (l >= m.shape.layers)
      throw Error(ErrorCode::invalid_argument,
                  "layer=" + str(l) + " is out of range: the trace has layers [0, " + str(m.shape.layers) + ")");
  if (o.block_tokens == 0) throw Error(ErrorCode::invalid_argument, "block_tokens=0: must be at least 1");
}

// Everything measured at one decode step that every method compares against.
struct DenseStep {
  std::vector<std::vector<double>> out;    // [q_heads][d]
  std::vector<std::vector<double>> probs;  // [q_heads][S]
  std::vector<std::vector<std::uint32_t>> rank;
  std::vector<std::vector<double>> group_mass;  // [kv_heads][S]
};

StepMetrics measure(const DenseStep& dense, std::size_t head, std::span<const std::uint32_t> fetched,
                    std::span<const double> y) {
  StepMetrics m;
  m.rel_l2 = relative_l2(y, dense.out[head]);
  m.cosine = cosine_similarity(y, dense.out[head]);
  m.recall = recall(fetched, dense.rank[head]);
  m.alpha_true = captured_mass(fetched, dense.probs[head]);
  m.k = double(fetched.size());
  return m;
}

class LayerRun {
 public:
  LayerRun(const TraceManifest& m, const TraceLayer& t, const EvalOptions& o, std::span<const std::size_t> steps)
      : m_(m), t_(t), o_(o), steps_(steps), g_(m.shape.group()), d_(m.shape.head_dim), scale_(m.softmax_scale()) {
    sums_.resize(o.methods.size() * o.ratios.size());
    if (o.per_head) head_sums_.resize(sums_.size() * m.shape.q_heads);
    for (EvalMethod method : o.methods) has_h2o_ |= method == EvalMethod::h2o;
    if (has_h2o_) h2o_.assign(o.ratios.size(), std::vector<H2OCache>(m.shape.kv_heads));
  }

  void run() {
    const std::size_t n = m_.positions, nkv = m_.shape.kv_heads, block = o_.block_tokens;
    KVCache cache({.layers = 1,
                   .kv_heads = nkv,
                   .head_dim = d_,
                   .dtype = DType::f32,
                   .block_tokens = block,
                   .capacity_tokens = (n + block - 1) / block * block,
                   .layouts = KeyLayout::both,
                   .d_major_type = o_.d_major_type});
    const SeqId seq = cache.add_sequence();
    std::size_t next = 0;  // index into steps_
    for (std::size_t p = 0; p < n; ++p) {
      const std::size_t row = nkv * d_;
      cache.append(seq, 0, std::span(t_.k).subspan(p * row, row), std::span(t_.v).subspan(p * row, row), 1);
      const bool eval_step = next < steps_.size() && steps_[next] == p;
      std::optional<DenseStep> dense;
      if (eval_step) dense = run_dense(cache, seq, p);
      if (has_h2o_) run_h2o(p, dense ? &*dense : nullptr);
      if (eval_step) {
        run_methods(cache, seq, p, *dense);
        ++next;
      }
    }
  }

  [[nodiscard]] const std::vector<MetricSums>& sums() const { return sums_; }
  // Per query head of row i (methods x ratios), or null without EvalOptions::per_head.
  [[nodiscard]] const MetricSums* head_sums(std::size_t i) const {
    return head_sums_.empty() ? nullptr : head_sums_.data() + i * m_.shape.q_heads;
  }
  [[nodiscard]] double dense_bytes_per_step() const { return dense_sums_.bytes_per_step(); }
  [[nodiscard]] const MetricSums& dense_sums() const { return dense_sums_; }

 private:
  MetricSums& sums_of(std::size_t method_index, std::size_t ratio_index) {
    return sums_[method_index * o_.ratios.size() + ratio_index];
  }
  MetricSums* head_sums_of(std::size_t method_index, std::size_t ratio_index) {
    return head_sums_.empty() ? nullptr
                              : head_sums_.data() + (method_index * o_.ratios.size() + ratio_index) * m_.shape.q_heads;
  }

  DecodeOptions decode_options(Profile* profile) const {
    DecodeOptions opt;
    opt.scale = m_.scale ? float(*m_.scale) : 0.0f;
    opt.profile = profile;
    return opt;
  }

  DenseStep run_dense(const KVCache& cache, SeqId seq, std::size_t p) {
    const std::size_t nq = m_.shape.q_heads, S = p + 1;
    std::vector<float> y(nq * d_);
    Profile profile;
    const DecodeItem item{.seq = seq, .q = t_.queries(p), .out = y};
    decode(cache, 0, Dense{}, std::span(&item, 1), decode_options(&profile));
    dense_sums_.add_bytes(double(profile.total().bytes_read));
    DenseStep s;
    s.group_mass.assign(m_.shape.kv_heads, std::vector<double>(S, 0.0));
    for (std::size_t h = 0; h < nq; ++h) {
      s.out.emplace_back(y.begin() + std::ptrdiff_t(h * d_), y.begin() + std::ptrdiff_t((h + 1) * d_));
      s.probs.push_back(dense_probs(t_, p, h, scale_));
      s.rank.push_back(dense_rank(s.probs.back()));
      for (std::size_t j = 0; j < S; ++j) s.group_mass[h / g_][j] += s.probs.back()[j];
    }
    return s;
  }

  // Attention of every query head of q_p over per-KV-head position sets; measured
  // against dense when `dense` is given. Returns the group-summed probabilities.
  std::vector<std::vector<double>> attend_sets(std::size_t p, const std::vector<std::vector<std::uint32_t>>& sets,
                                               const DenseStep* dense, MetricSums* sums, MetricSums* head_sums) {
    std::vector<std::vector<double>> group_probs(sets.size());
    std::vector<double> y(d_);
    for (std::size_t h = 0; h < m_.shape.q_heads; ++h) {
      const std::size_t kv = h / g_;
      const std::vector<double> probs = attention_probs(t_, p, h, sets[kv], scale_);
      if (group_probs[kv].empty()) group_probs[kv].assign(probs.size(), 0.0);
      for (std::size_t i = 0; i < probs.size(); ++i) group_probs[kv][i] += probs[i];
      if (dense) {
        weighted_values(t_, kv, sets[kv], probs, y);
        const StepMetrics sm = measure(*dense, h, sets[kv], y);
        sums->add(sm);
        if (head_sums) head_sums[h].add(sm);
      }
    }
    return group_probs;
  }

  double baseline_bytes(const std::vector<std::vector<std::uint32_t>>& sets) const {
    double bytes = 0;
    for (const auto& s : sets) bytes += double(rows_model_bytes(d_, s.size(), size_of(DType::f32)));
    return bytes;
  }

  void run_h2o(std::size_t p, const DenseStep* dense) {
    const std::size_t method_index =
        std::size_t(std::find(o_.methods.begin(), o_.methods.end(), EvalMethod::h2o) - o_.methods.begin());
    for (std::size_t ri = 0; ri < o_.ratios.size(); ++ri) {
      const std::size_t budget = equal_bytes_budget(d_, p + 1, o_.ratios[ri]);
      std::vector<std::vector<std::uint32_t>> sets;
      for (H2OCache& c : h2o_[ri]) {
        c.add();
        c.evict_to(budget);
        sets.push_back(c.kept());
      }
      MetricSums& sums = sums_of(method_index, ri);
      const auto group_probs = attend_sets(p, sets, dense, &sums, head_sums_of(method_index, ri));
      for (std::size_t kv = 0; kv < sets.size(); ++kv) h2o_[ri][kv].accumulate(group_probs[kv]);
      if (dense) sums.add_bytes(baseline_bytes(sets));
    }
  }

  void run_methods(const KVCache& cache, SeqId seq, std::size_t p, const DenseStep& dense) {
    const std::size_t S = p + 1, nq = m_.shape.q_heads, nkv = m_.shape.kv_heads;
    for (std::size_t mi = 0; mi < o_.methods.size(); ++mi) {
      const EvalMethod method = o_.methods[mi];
      if (method == EvalMethod::h2o) continue;  // run at every position by run_h2o
      for (std::size_t ri = 0; ri < o_.ratios.size(); ++ri) {
        MetricSums& sums = sums_of(mi, ri);
        if (runs_in_library(method)) {
          std::vector<float> y(nq * d_), alpha(nq);
          std::vector<std::vector<std::uint32_t>> selected;
          Profile profile;
          const DecodeItem item{.seq = seq, .q = t_.queries(p), .out = y, .alpha = alpha, .selected = &selected};
          const Method lib = sparq_variant(method, o_.ratios[ri]);
          decode(cache, 0, lib, std::span(&item, 1), decode_options(&profile));
          sums.add_bytes(double(profile.total().bytes_read));
          for (std::size_t h = 0; h < nq; ++h) {
            const std::vector<double> yh(y.begin() + std::ptrdiff_t(h * d_), y.begin() + std::ptrdiff_t((h + 1) * d_));
            StepMetrics sm = measure(dense, h, selected.at(h), yh);
            sm.alpha_est = double(alpha[h]);
            sums.add(sm);
            if (MetricSums* hs = head_sums_of(mi, ri)) hs[h].add(sm);
          }
          continue;
        }
        const std::size_t budget = equal_bytes_budget(d_, S, o_.ratios[ri]);
        std::vector<std::vector<std::uint32_t>> sets;
        for (std::size_t kv = 0; kv < nkv; ++kv)
          sets.push_back(method == EvalMethod::oracle ? oracle_positions(dense.group_mass[kv], budget)
                                                      : sink_window_positions(S, budget, o_.sinks));
        (void)attend_sets(p, sets, &dense, &sums, head_sums_of(mi, ri));
        sums.add_bytes(baseline_bytes(sets));
      }
    }
  }

  const TraceManifest& m_;
  const TraceLayer& t_;
  const EvalOptions& o_;
  std::span<const std::size_t> steps_;
  std::size_t g_, d_;
  double scale_;
  bool has_h2o_ = false;
  std::vector<std::vector<H2OCache>> h2o_;  // [ratio][kv_head]
  std::vector<MetricSums> sums_;            // [method][ratio]
  std::vector<MetricSums> head_sums_;       // [method][ratio][q_head], with per_head
  MetricSums dense_sums_;
};

}  // namespace

std::vector<std::size_t> select_steps(const TraceManifest& m, std::size_t steps) {
  const std::size_t first = m.prefill, count = m.positions - m.prefill;
  std::vector<std::size_t> out;
  if (steps == 0 || steps >= count) {
    for (std::size_t i = 0; i < count; ++i) out.push_back(first + i);
    return out;
  }
  if (steps == 1) return {m.positions - 1};
  for (std::size_t i = 0; i < steps; ++i) {
    const std::size_t p = first + (i * (count - 1) + (steps - 1) / 2) / (steps - 1);  // rounded
    if (out.empty() || out.back() != p) out.push_back(p);
  }
  return out;
}

EvalResult run_eval(const TraceManifest& manifest, const LayerLoader& load, const EvalOptions& options) {
  manifest.validate();
  check_options(manifest, options);
  EvalResult r;
  r.manifest = manifest;
  r.isa = std::string(to_string(active_isa()));
  r.d_major_type = options.d_major_type;
  if (options.layers.empty())
    for (std::size_t l = 0; l < manifest.shape.layers; ++l) r.layers.push_back(l);
  else
    r.layers = options.layers;
  r.steps = select_steps(manifest, options.steps);

  const std::size_t rows = options.methods.size() * options.ratios.size();
  std::vector<MetricSums> overall(rows);
  MetricSums dense_overall;
  r.rows.resize(rows);
  for (std::size_t mi = 0; mi < options.methods.size(); ++mi)
    for (std::size_t ri = 0; ri < options.ratios.size(); ++ri)
      r.rows[mi * options.ratios.size() + ri] = MethodResult{options.methods[mi], options.ratios[ri], {}, {}, {}};

  for (std::size_t li = 0; li < r.layers.size(); ++li) {
    const TraceLayer layer = load(r.layers[li]);
    LayerRun run(manifest, layer, options, r.steps);
    run.run();
    r.dense_bytes_per_step.push_back(run.dense_bytes_per_step());
    dense_overall.merge(run.dense_sums());
    for (std::size_t i = 0; i < rows; ++i) {
      r.rows[i].per_layer.push_back(run.sums()[i].summary(run.dense_bytes_per_step()));
      if (const MetricSums* hs = run.head_sums(i)) {
        std::vector<Summary> heads;
        for (std::size_t h = 0; h < manifest.shape.q_heads; ++h) heads.push_back(hs[h].summary(0.0));
        r.rows[i].per_head.push_back(std::move(heads));
      }
      overall[i].merge(run.sums()[i]);
    }
    if (options.progress) options.progress(li + 1, r.layers.size());
  }
  r.dense_bytes_overall = dense_overall.bytes_per_step();
  for (std::size_t i = 0; i < rows; ++i) r.rows[i].overall = overall[i].summary(r.dense_bytes_overall);
  return r;
}

EvalResult run_eval(const std::filesystem::path& dir, const EvalOptions& options) {
  const TraceManifest manifest = read_trace_manifest(dir);
  return run_eval(
      manifest, [&](std::size_t layer) { return read_trace_layer(dir, manifest, layer); }, options);
}

}  // namespace sparq::eval
