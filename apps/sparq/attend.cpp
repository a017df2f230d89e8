// `sparq attend`: one decode step from .npy files.
//
//   Q [q_heads, d], K and V [kv_heads, S, d] (float32 or float64)  ->  Y [q_heads, d] float32
//
// K and V are appended to a one-layer sparq::KVCache in the requested storage type and
// layout, sparq::decode runs the method, Y is written atomically. Everything is checked
// before the output is written, so a failed run leaves no output file behind.
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "cli.hpp"
#include "options.hpp"
#include "sparq/decode.hpp"
#include "sparq/isa.hpp"
#include "sparq/kv_cache.hpp"
#include "sparq/method.hpp"
#include "sparq/tools/npy.hpp"

namespace sparq::cli {

namespace {

// The cache's limits (CacheConfig::validate): d of a KV head, tokens per block.
constexpr std::int64_t kMaxHeadDim = 1 << 14, kMaxBlockTokens = 1 << 16;

struct AttendOptions {
  std::string queries, keys, values, out;
  std::string method = "sparq";
  std::optional<std::int64_t> r, k, window;
  double ratio = 8.0;
  bool no_reallocation = false;
  std::string reallocation;  // "", "on", "off"
  std::string gqa = "shared";
  std::string dtype = "f32";
  std::int64_t block_tokens = 256;
  std::string layout = "both";
  std::string d_major_type = "same";
  bool json = false;
};

// --out must not name one of the inputs (in any spelling: the same file), which the
// atomic write would replace. Checked before anything is read.
void check_output_is_not_an_input(const AttendOptions& o) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(o.out, ec)) return;
  for (const auto& [option, input] :
       {std::pair<const char*, const std::string&>{"--queries", o.queries}, {"--keys", o.keys}, {"--values", o.values}})
    if (fs::equivalent(o.out, input, ec))
      usage_error(fmt::format("--out {} is also an input ({} {}): choose another output file", o.out, option, input));
}

// Index of flat element `flat` in `shape`, e.g. "[1, 0, 5]", for error messages.
std::string index_of(std::size_t flat, const std::vector<std::size_t>& shape) {
  std::vector<std::size_t> idx(shape.size());
  for (std::size_t i = shape.size(); i-- > 0;) {
    idx[i] = flat % shape[i];
    flat /= shape[i];
  }
  return shape_to_string(idx);
}

void require_finite(const NpyArray& a, const std::string& file) {
  for (std::size_t i = 0; i < a.data.size(); ++i) {
    if (std::isfinite(a.data[i])) continue;
    throw Error(ErrorCode::non_finite_input,
                fmt::format("{}: element {} is {}: inputs must be finite", file, index_of(i, a.shape),
                            std::isnan(a.data[i]) ? "NaN" : (a.data[i] > 0 ? "+Inf" : "-Inf")));
  }
}

struct Shapes {
  std::size_t q_heads, kv_heads, seq_len, head_dim;
};

Shapes check_shapes(const AttendOptions& o, const NpyArray& q, const NpyArray& k, const NpyArray& v) {
  auto shape_error = [](const std::string& what) { throw Error(ErrorCode::shape_mismatch, what); };
  if (q.ndim() != 2)
    shape_error(fmt::format("{}: queries must be 2-D [q_heads, d], got shape {}", o.queries, shape_to_string(q.shape)));
  if (k.ndim() != 3)
    shape_error(fmt::format("{}: keys must be 3-D [kv_heads, S, d], got shape {}", o.keys, shape_to_string(k.shape)));
  if (v.ndim() != 3)
    shape_error(
        fmt::format("{}: values must be 3-D [kv_heads, S, d], got shape {}", o.values, shape_to_string(v.shape)));
  if (k.shape != v.shape)
    shape_error(fmt::format("{}: values have shape {} but keys ({}) have shape {}: they must be equal", o.values,
                            shape_to_string(v.shape), o.keys, shape_to_string(k.shape)));
  const Shapes s{q.shape[0], k.shape[0], k.shape[1], k.shape[2]};
  if (s.head_dim == 0) shape_error(fmt::format("{}: head dimension d=0: must be at least 1", o.keys));
  if (q.shape[1] != s.head_dim)
    shape_error(
        fmt::format("{}: queries have d={} but keys ({}) have d={}", o.queries, q.shape[1], o.keys, s.head_dim));
  if (s.kv_heads == 0) shape_error(fmt::format("{}: kv_heads=0: must be at least 1", o.keys));
  if (s.q_heads == 0) shape_error(fmt::format("{}: q_heads=0: must be at least 1", o.queries));
  if (s.q_heads % s.kv_heads != 0)
    shape_error(fmt::format("{}: q_heads={} is not a multiple of kv_heads={} (from {})", o.queries, s.q_heads,
                            s.kv_heads, o.keys));
  if (s.seq_len == 0)
    throw Error(ErrorCode::empty_sequence,
                fmt::format("{}: sequence length S=0: attention needs at least one position", o.keys));
  return s;
}

Method make_method(const AttendOptions& o, const Shapes& s) {
  if (o.method == "dense") return Dense{};
  SparQ m;
  m.ratio = o.ratio;
  if (o.r) {
    if (static_cast<std::uint64_t>(*o.r) > s.head_dim)
      usage_error(fmt::format("--r={} exceeds d={} (from {}): r must be in [1, d]", *o.r, s.head_dim, o.keys));
    m.r = static_cast<std::size_t>(*o.r);
  }
  if (o.k) m.k = static_cast<std::size_t>(*o.k);
  if (o.window) m.window = static_cast<std::size_t>(*o.window);
  if (o.no_reallocation) m.reallocation = false;
  if (!o.reallocation.empty()) m.reallocation = o.reallocation == "on";
  m.gqa = *parse_gqa_selection(o.gqa);
  return m;
}

// K or V [kv_heads][S][d] -> [S][kv_heads][d], the order KVCache::append takes.
std::vector<float> tokens_major(const NpyArray& a, const Shapes& s) {
  std::vector<float> t(a.data.size());
  for (std::size_t h = 0; h < s.kv_heads; ++h)
    for (std::size_t j = 0; j < s.seq_len; ++j)
      std::copy_n(a.data.data() + (h * s.seq_len + j) * s.head_dim, s.head_dim,
                  t.data() + (j * s.kv_heads + h) * s.head_dim);
  return t;
}

int run(const AttendOptions& o) {
  check_output_is_not_an_input(o);
  const NpyArray q = read_npy(o.queries);
  const NpyArray k = read_npy(o.keys);
  const NpyArray v = read_npy(o.values);
  const Shapes s = check_shapes(o, q, k, v);
  require_finite(q, o.queries);
  require_finite(k, o.keys);
  require_finite(v, o.values);

  const std::size_t group = s.q_heads / s.kv_heads;
  const Method method = make_method(o, s);
  std::optional<SparQResolved> resolved;
  if (const auto* sp = std::get_if<SparQ>(&method)) resolved = sp->resolve(s.head_dim, s.seq_len, group);

  const auto block = static_cast<std::size_t>(o.block_tokens);
  CacheConfig config{.layers = 1,
                     .kv_heads = s.kv_heads,
                     .head_dim = s.head_dim,
                     .dtype = *parse_dtype(o.dtype),
                     .block_tokens = block,
                     .capacity_tokens = (s.seq_len + block - 1) / block * block,
                     .layouts = *parse_key_layout(o.layout),
                     .d_major_type = *parse_d_major_type(o.d_major_type)};
  config.validate();  // int8 needs an S-major copy: a usage error, named, before any work
  KVCache cache(config);
  const SeqId seq = cache.add_sequence();
  cache.append(seq, 0, tokens_major(k, s), tokens_major(v, s), s.seq_len);

  std::vector<float> y(s.q_heads * s.head_dim), lse(s.q_heads), alpha(s.q_heads);
  const DecodeItem item{.seq = seq, .q = q.data, .out = y, .lse = lse, .alpha = alpha};
  const auto start = std::chrono::steady_clock::now();
  decode(cache, 0, method, std::span(&item, 1));
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  const std::size_t out_shape[] = {s.q_heads, s.head_dim};
  write_npy(o.out, y, out_shape);

  if (o.json) {
    nlohmann::ordered_json j;
    j["method"] = o.method;
    if (resolved) {
      j["r"] = resolved->r;
      j["k"] = resolved->k;
      j["window"] = resolved->window;
      j["reallocation"] = resolved->reallocation;
      j["gqa"] = std::string(to_string(resolved->gqa));
      j["ratio"] = o.ratio;
    } else {  // dense: the SparQ parameters do not apply
      for (const char* key : {"r", "k", "window", "reallocation", "gqa", "ratio"}) j[key] = nullptr;
    }
    j["dtype"] = o.dtype;
    j["layout"] = o.layout;
    j["block_tokens"] = block;
    j["S"] = s.seq_len;
    j["d"] = s.head_dim;
    j["q_heads"] = s.q_heads;
    j["kv_heads"] = s.kv_heads;
    j["isa"] = std::string(to_string(active_isa()));
    j["alpha"] = alpha;
    j["lse"] = lse;
    j["elapsed_seconds"] = elapsed;
    j["out"] = o.out;
    fmt::print("{}\n", j.dump(2));
  } else if (resolved) {
    fmt::print("wrote {} [{}, {}]: sparq r={} k={} window={} reallocation={} gqa={} dtype={}, {:.3f} ms\n", o.out,
               s.q_heads, s.head_dim, resolved->r, resolved->k, resolved->window, resolved->reallocation ? "on" : "off",
               to_string(resolved->gqa), o.dtype, elapsed * 1e3);
  } else {
    fmt::print("wrote {} [{}, {}]: dense dtype={}, {:.3f} ms\n", o.out, s.q_heads, s.head_dim, o.dtype, elapsed * 1e3);
  }
  return kExitOk;
}

Action setup(CLI::App& cmd) {
  auto o = std::make_shared<AttendOptions>();
  cmd.add_option("--queries", o->queries, "Queries Q.npy, float32/float64 [q_heads, d]")->required();
  cmd.add_option("--keys", o->keys, "Keys K.npy, float32/float64 [kv_heads, S, d]")->required();
  cmd.add_option("--values", o->values, "Values V.npy, float32/float64 [kv_heads, S, d]")->required();
  cmd.add_option("--out", o->out, "Output Y.npy, float32 [q_heads, d] (written atomically; not one of the inputs)")
      ->required();
  cmd.add_option("--method", o->method, "Attention method")
      ->check(CLI::IsMember({"dense", "sparq"}))
      ->capture_default_str();
  cmd.add_option("--ratio", o->ratio, "SparQ compression ratio c >= 1: r = round(d/c), k = round(S/(2c))")
      ->check(number_at_least(1.0))
      ->capture_default_str();
  cmd.add_option("--r", o->r, "Query components kept, 1 <= r <= d (overrides --ratio)")
      ->transform(integer_in(1, kMaxHeadDim));
  cmd.add_option("--k", o->k, "Positions fetched, k >= 1, local window included (overrides --ratio)")
      ->transform(integer_in(1, kMaxInt64));
  cmd.add_option("--window", o->window, "Local window l >= 0, the last l positions always fetched (default k/4)")
      ->transform(integer_in(0, kMaxInt64));
  auto* no_realloc = cmd.add_flag("--no-reallocation", o->no_reallocation, "Same as --reallocation off");
  cmd.add_option("--reallocation", o->reallocation,
                 "Mix in the mean value by 1 - alpha (default: on when q_heads = kv_heads, else off)")
      ->check(CLI::IsMember({"on", "off"}))
      ->excludes(no_realloc);
  cmd.add_option("--gqa", o->gqa, "GQA selection: one per KV head (shared) or per query head")
      ->check(CLI::IsMember({"shared", "per-head"}))
      ->capture_default_str();
  cmd.add_option("--dtype", o->dtype, "Storage type of the cached K/V")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}))
      ->capture_default_str();
  cmd.add_option("--block-tokens", o->block_tokens, "Tokens per cache block")
      ->transform(integer_in(1, kMaxBlockTokens))
      ->capture_default_str();
  add_storage_options(cmd, o->layout, o->d_major_type, {"both", "s-major", "d-major", "fused"});
  cmd.add_flag("--json", o->json, "Print parameters, per-head alpha and lse, and timing as JSON");
  return [o] { return run(*o); };
}

}  // namespace

Subcommand attend_subcommand() {
  return {"attend", "Run one decode step (dense or SparQ) on Q, K, V from .npy files and write Y.npy", &setup};
}

}  // namespace sparq::cli
