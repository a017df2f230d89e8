// The public decode() and decode_causal(): validate every argument before any output is
// written, hold the cache's read guard of every sequence for the duration, enter the
// caller's arena, dispatch to the kernel family. Built at the x86-64 baseline.
#include "sparq/decode.hpp"

#include <cmath>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "api/node_decode.hpp"
#include "kernels/kernel_api.hpp"
#include "kernels/scratch.hpp"
#include "sparq/error.hpp"

namespace sparq {
namespace {

std::string str(std::size_t v) {
  return std::to_string(v);
}

[[noreturn]] void fail(ErrorCode code, const std::string& message) {
  throw Error(code, message);
}

// Resolved call-wide parameters.
struct CallShape {
  std::size_t d = 0;
  std::size_t kv_begin = 0;
  std::size_t kv_end = 0;
  std::size_t n_kv = 0;
  float scale = 0.0f;
};

CallShape resolve_call(const KVCache& cache, std::size_t layer, const DecodeOptions& options) {
  const CacheConfig& cfg = cache.config();
  if (layer >= cfg.layers)
    fail(ErrorCode::invalid_argument,
         "layer=" + str(layer) + " is out of range: layer must be in [0, " + str(cfg.layers) + ")");
  CallShape c;
  c.d = cfg.head_dim;
  c.kv_begin = options.kv_head_begin;
  const bool all = options.kv_head_end == ~std::size_t{0};
  if (!all && options.kv_head_end > cfg.kv_heads)  // a rank's range past the cache is a caller bug, not "the rest"
    fail(ErrorCode::invalid_argument, "kv_head_end=" + str(options.kv_head_end) + " exceeds kv_heads=" +
                                          str(cfg.kv_heads) + ": kv_head_end must be in [1, kv_heads] (or ~0 for all)");
  c.kv_end = all ? cfg.kv_heads : options.kv_head_end;
  if (c.kv_begin >= c.kv_end)
    fail(ErrorCode::invalid_argument,
         "kv_head_begin=" + str(options.kv_head_begin) + ", kv_head_end=" +
             (options.kv_head_end == ~std::size_t{0} ? std::string("(all)") : str(options.kv_head_end)) +
             ": the KV-head range must be non-empty within [0, kv_heads=" + str(cfg.kv_heads) + ")");
  c.n_kv = c.kv_end - c.kv_begin;
  if (!std::isfinite(options.scale) || options.scale < 0.0f)
    fail(ErrorCode::invalid_argument, "scale=" + std::to_string(options.scale) +
                                          " is invalid: the softmax scale must be finite and >= 0 (0 means 1/sqrt(d))");
  c.scale = options.scale > 0.0f ? options.scale : float(1.0 / std::sqrt(double(c.d)));
  return c;
}

// Query heads of an item from the size of q; throws unless q is [q_heads][d] with q_heads
// a positive multiple of the call's KV heads (and equal to `expected` when given).
std::size_t query_heads(std::size_t q_size, const CallShape& c, const std::string& name,
                        std::optional<std::size_t> expected, std::size_t rows = 1) {
  const std::size_t unit = c.n_kv * c.d * rows;
  if (expected) {
    if (q_size != *expected * c.d * rows)
      fail(ErrorCode::shape_mismatch, name + " has " + str(q_size) + " floats, expected " + (rows > 1 ? "n_new*" : "") +
                                          "q_heads*head_dim = " + str(*expected * c.d * rows) + " (" +
                                          (rows > 1 ? str(rows) + "*" : "") + str(*expected) + "*" + str(c.d) + ")");
    return *expected;
  }
  if (q_size == 0 || q_size % unit != 0)
    fail(ErrorCode::shape_mismatch, name + " has " + str(q_size) + " floats, expected " + (rows > 1 ? "n_new*" : "") +
                                        "q_heads*head_dim with q_heads a positive multiple of the call's " +
                                        str(c.n_kv) + " KV heads: a multiple of " + str(unit));
  return q_size / (c.d * rows);
}

void check_size(std::size_t got, std::size_t want, const std::string& name, const std::string& rule) {
  if (got != want)
    fail(ErrorCode::shape_mismatch, name + " has " + str(got) + " floats, expected " + rule + " = " + str(want));
}

void check_finite(std::span<const float> q, const std::string& name) {
  for (std::size_t i = 0; i < q.size(); ++i)
    if (!std::isfinite(q[i]))
      fail(ErrorCode::non_finite_input,
           name + "[" + str(i) + "] = " + std::to_string(q[i]) + ": queries must be finite");
}

// The kernels keep every finite input finite (kernels/softmax_range.hpp); this catches
// what arithmetic on values near f32's limit could still overflow, so that no call
// returns a silent NaN or inf.
void check_output_finite(std::span<const float> out, std::size_t d, const std::string& name) {
  for (std::size_t i = 0; i < out.size(); ++i)
    if (!std::isfinite(out[i]))
      fail(ErrorCode::non_finite_input,
           name + ": the output of query head " + str(i / d) + " is not finite (" + std::to_string(out[i]) +
               "): keys or values too close to the f32 limit (3.4e38) overflowed the attention arithmetic");
}

void check_length(std::size_t s, SeqId seq, std::size_t layer, const std::string& name) {
  if (s == 0)
    fail(ErrorCode::empty_sequence, name + ": sequence " + std::to_string(seq) + " has no tokens in layer " +
                                        str(layer) + ": attention needs S >= 1");
}

// Holds options.workspace for one call: one decode at a time per workspace.
class WorkspaceClaim {
 public:
  explicit WorkspaceClaim(Workspace* ws) : impl_(ws ? &ws->impl() : nullptr) {
    if (impl_ && impl_->in_use.exchange(true)) {
      impl_ = nullptr;
      fail(ErrorCode::concurrent_use,
           "options.workspace is in use by another decode: give each thread that "
           "decodes concurrently its own sparq::Workspace");
    }
  }
  ~WorkspaceClaim() {
    if (impl_) impl_->in_use.store(false);
  }
  WorkspaceClaim(const WorkspaceClaim&) = delete;
  WorkspaceClaim& operator=(const WorkspaceClaim&) = delete;
  [[nodiscard]] Workspace::Impl* get() const noexcept { return impl_; }

 private:
  Workspace::Impl* impl_;
};

kernels::Common common_for(const CallShape& c, std::size_t group, const DecodeOptions& options,
                           const WorkspaceClaim& ws) {
  kernels::Common k;
  k.workspace = ws.get();
  k.kv_begin = c.kv_begin;
  k.kv_end = c.kv_end;
  k.group = group;
  k.scale = c.scale;
  k.isa = active_isa();
  k.profile = options.profile;
  return k;
}

template <class F>
void run_in(tbb::task_arena* arena, Profile* profile, F&& f) {
  auto body = [&] {
    if (profile) {
      profile->isa = active_isa();
      profile->threads = std::size_t(tbb::this_task_arena::max_concurrency());
    }
    f();
  };
  if (arena)
    arena->execute(body);
  else
    body();
}

}  // namespace

void decode(const KVCache& cache, std::size_t layer, const Method& method, std::span<const DecodeItem> batch,
            const DecodeOptions& options) {
  const CallShape c = resolve_call(cache, layer, options);
  const bool sparq = std::holds_alternative<SparQ>(method);
  std::vector<KVCache::ReadLock> locks;
  locks.reserve(batch.size());
  std::vector<kernels::Task> tasks;
  tasks.reserve(batch.size());
  std::optional<std::size_t> n_q;
  for (std::size_t b = 0; b < batch.size(); ++b) {
    const DecodeItem& item = batch[b];
    const std::string name = "batch[" + str(b) + "]";
    locks.push_back(cache.lock_for_read(item.seq));  // throws unknown_sequence
    const LayerView view = cache.view(item.seq, layer);
    check_length(view.length, item.seq, layer, name);
    n_q = query_heads(item.q.size(), c, name + ".q", n_q);
    const std::size_t g = *n_q / c.n_kv;
    check_size(item.out.size(), *n_q * c.d, name + ".out", "q_heads*head_dim (" + str(*n_q) + "*" + str(c.d) + ")");
    if (!item.lse.empty()) check_size(item.lse.size(), *n_q, name + ".lse", "q_heads (or empty)");
    if (!item.alpha.empty()) check_size(item.alpha.size(), *n_q, name + ".alpha", "q_heads (or empty)");
    check_finite(item.q, name + ".q");
    kernels::Task t{};
    t.view = view;
    t.q = item.q.data();
    t.out = item.out.data();
    t.lse = item.lse.empty() ? nullptr : item.lse.data();
    t.alpha = item.alpha.empty() ? nullptr : item.alpha.data();
    t.selected = item.selected;
    if (sparq) t.sparq = std::get<SparQ>(method).resolve(c.d, view.length, g);
    tasks.push_back(t);
  }
  if (tasks.empty()) return;
  const WorkspaceClaim ws(options.workspace);
  const kernels::Common common = common_for(c, *n_q / c.n_kv, options, ws);
  run_in(options.arena, options.profile, [&] {
    const api::DecodeKernel kernel = sparq ? &kernels::sparq_decode : &kernels::dense_decode;
    if (api::splits_by_node(cache, options.arena))  // by-head placement: each node decodes its own heads
      api::decode_by_node(cache, tasks, common, kernel);
    else
      kernel(tasks, common);
  });
  for (std::size_t b = 0; b < batch.size(); ++b) check_output_finite(batch[b].out, c.d, "batch[" + str(b) + "]");
}

void decode_causal(const KVCache& cache, std::size_t layer, SeqId seq, std::span<const float> q, std::span<float> out,
                   std::size_t n_new, const DecodeOptions& options) {
  const CallShape c = resolve_call(cache, layer, options);
  const KVCache::ReadLock lock = cache.lock_for_read(seq);
  const LayerView view = cache.view(seq, layer);
  check_length(view.length, seq, layer, "decode_causal");
  if (n_new == 0 || n_new > view.length)
    fail(ErrorCode::invalid_argument, "n_new=" + str(n_new) + " is out of range: n_new must be in [1, S=" +
                                          str(view.length) + "] (the new queries are the last n_new positions)");
  const std::size_t n_q = query_heads(q.size(), c, "q", std::nullopt, n_new);
  check_size(out.size(), q.size(), "out",
             "n_new*q_heads*head_dim (" + str(n_new) + "*" + str(n_q) + "*" + str(c.d) + ")");
  check_finite(q, "q");
  const kernels::CausalTask task{view, q.data(), out.data(), n_new};
  const WorkspaceClaim ws(options.workspace);
  const kernels::Common common = common_for(c, n_q / c.n_kv, options, ws);
  run_in(options.arena, options.profile, [&] { kernels::dense_decode_causal(task, common); });
  check_output_finite(out, c.d, "decode_causal");
}

}  // namespace sparq
