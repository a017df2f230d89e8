#include "sparq/tools/model/model_trace.hpp"

#include <fmt/core.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "sparq/error.hpp"
#include "sparq/tools/npy.hpp"

namespace sparq::cli {

TraceRecorder::TraceRecorder(model::LlamaModel& model) : model_(model), q_(model.config().n_layers) {
  start();
}

void TraceRecorder::start() {
  model_.set_query_observer(
      [this](SeqId seq, std::size_t layer, std::size_t pos, std::size_t n, std::span<const float> q) {
        if (!followed_.contains(seq)) return;
        const std::size_t row = model_.config().dim;  // n_heads * head_dim
        auto& dst = q_[layer];
        if (dst.size() < (pos + n) * row) dst.resize((pos + n) * row);
        std::copy_n(q.data(), n * row, dst.data() + pos * row);
      });
}

TraceRecorder::~TraceRecorder() {
  stop();
}

void TraceRecorder::stop() {
  model_.set_query_observer(nullptr);
}

void TraceRecorder::write(const std::filesystem::path& dir, SeqId seq, const std::vector<int>& tokens,
                          std::size_t prefill, const std::string& source) const {
  const model::LlamaConfig& c = model_.config();
  const std::size_t S = tokens.size(), hd = c.head_dim();
  for (std::size_t l = 0; l < c.n_layers; ++l)
    if (q_[l].size() < S * c.dim || model_.cache().length(seq, l) < S)
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("trace of {} positions requested but layer {} recorded fewer", S, l));
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error(ErrorCode::io_error, fmt::format("{}: cannot create directory: {}", dir.string(), ec.message()));

  nlohmann::ordered_json layers = nlohmann::json::array();
  std::vector<float> k(S * c.n_kv_heads * hd), v(k.size());
  for (std::size_t l = 0; l < c.n_layers; ++l) {
    for (std::size_t j = 0; j < S; ++j)
      for (std::size_t h = 0; h < c.n_kv_heads; ++h) {
        model_.cache().read_key(seq, l, h, j, std::span(k).subspan((j * c.n_kv_heads + h) * hd, hd));
        model_.cache().read_value(seq, l, h, j, std::span(v).subspan((j * c.n_kv_heads + h) * hd, hd));
      }
    const std::size_t q_shape[] = {S, c.n_heads, hd}, kv_shape[] = {S, c.n_kv_heads, hd};
    const std::string qn = fmt::format("layer{}_q.npy", l), kn = fmt::format("layer{}_k.npy", l),
                      vn = fmt::format("layer{}_v.npy", l);
    write_npy(dir / qn, std::span(q_[l]).first(S * c.dim), q_shape);
    write_npy(dir / kn, k, kv_shape);
    write_npy(dir / vn, v, kv_shape);
    layers.push_back({{"q", qn}, {"k", kn}, {"v", vn}});
  }
  std::vector<float> tok(tokens.begin(), tokens.end());
  const std::size_t tok_shape[] = {S};
  write_npy(dir / "tokens.npy", tok, tok_shape);

  nlohmann::ordered_json m;
  m["format"] = "sparq-decode-trace";
  m["version"] = 1;
  m["source"] = source;
  m["layers"] = c.n_layers;
  m["q_heads"] = c.n_heads;
  m["kv_heads"] = c.n_kv_heads;
  m["head_dim"] = hd;
  m["positions"] = S;
  m["prefill"] = prefill;
  m["causal"] = true;
  m["scale"] = 1.0 / std::sqrt(double(hd));
  m["dtype"] = "float32";
  m["rope"] = {{"base", double(c.rope_theta)}, {"pairs", "adjacent (2i, 2i+1)"}, {"applied", true}};
  m["model"] = {{"dim", c.dim},         {"hidden_dim", c.hidden_dim},    {"n_layers", c.n_layers},
                {"n_heads", c.n_heads}, {"n_kv_heads", c.n_kv_heads},    {"vocab_size", c.vocab_size},
                {"seq_len", c.seq_len}, {"norm_eps", double(c.norm_eps)}};
  m["tokens"] = "tokens.npy";
  m["files"] = layers;
  const std::string text = m.dump(2) + "\n";
  std::ofstream out(dir / "manifest.json", std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw Error(ErrorCode::io_error, fmt::format("{}: cannot write manifest.json", dir.string()));
}

}  // namespace sparq::cli
