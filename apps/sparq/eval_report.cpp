#include "eval_report.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <map>
#include <vector>

#include "gnuplot.hpp"
#include "sparq/error.hpp"

namespace sparq::cli {

namespace {

nlohmann::ordered_json summary_json(const eval::Summary& s) {
  nlohmann::ordered_json j;
  j["k"] = s.k;
  j["bytes_per_step"] = s.bytes_per_step;
  j["transfer"] = s.transfer;
  j["rel_l2"] = s.rel_l2;
  j["median_rel_l2"] = s.median_rel_l2;
  j["max_rel_l2"] = s.max_rel_l2;
  j["cosine"] = s.cosine;
  j["recall"] = s.recall;
  j["alpha_true"] = s.alpha_true;
  j["alpha_est"] = s.alpha_est ? nlohmann::ordered_json(*s.alpha_est) : nlohmann::ordered_json(nullptr);
  j["samples"] = s.samples;
  return j;
}

std::string ratio_str(double r) {
  return fmt::format("{:g}", r);
}

std::string row_text(const std::string& method, double ratio, const std::string& layer, const eval::Summary& s) {
  return fmt::format(
      "{:<15} {:>5} {:>5} {:>8.1f} {:>12.0f} {:>8.2f} {:>9.5f} {:>9.5f} {:>9.5f} {:>8.5f} {:>7.4f} {:>8.4f} {:>8}\n",
      method, ratio_str(ratio), layer, s.k, s.bytes_per_step, s.transfer, s.rel_l2, s.median_rel_l2, s.max_rel_l2,
      s.cosine, s.recall, s.alpha_true, s.alpha_est ? fmt::format("{:.4f}", *s.alpha_est) : "-");
}

}  // namespace

std::string eval_text(const eval::EvalResult& r, const std::string& trace, bool per_layer) {
  const auto& m = r.manifest;
  std::string out = fmt::format(
      "sparq eval {}: {} layer(s) of {} evaluated, {} q heads / {} KV heads, d={}, {} positions ({} prompt), {} "
      "decode step(s) evaluated, isa={}, d-major copy {}\n",
      trace, r.layers.size(), m.shape.layers, m.shape.q_heads, m.shape.kv_heads, m.shape.head_dim, m.positions,
      m.prefill, r.steps.size(), r.isa, to_string(r.d_major_type));
  if (!m.source.empty()) out += fmt::format("source: {}\n", m.source);
  out += fmt::format("dense: {:.0f} bytes per step per layer; methods at equal bytes (see docs/eval-traces.md)\n\n",
                     r.dense_bytes_overall);
  const std::string header = fmt::format(
      "{:<15} {:>5} {:>5} {:>8} {:>12} {:>8} {:>9} {:>9} {:>9} {:>8} {:>7} {:>8} {:>8}\n", "method", "ratio", "layer",
      "k", "bytes/step", "transfer", "rel_l2", "med_rel", "max_rel", "cosine", "recall", "a_true", "a_est");
  out += header;
  for (const auto& row : r.rows) out += row_text(std::string(to_string(row.method)), row.ratio, "all", row.overall);
  if (per_layer && r.layers.size() > 1) {
    out += "\n" + header;
    for (const auto& row : r.rows)
      for (std::size_t li = 0; li < r.layers.size(); ++li)
        out += row_text(std::string(to_string(row.method)), row.ratio, std::to_string(r.layers[li]), row.per_layer[li]);
  }
  if (!r.rows.empty() && !r.rows[0].per_head.empty()) {  // --per-head: layer "L.h" = layer L, query head h
    out += "\nper query head (layer.head; bytes are per layer, above)\n" + header;
    for (const auto& row : r.rows)
      for (std::size_t li = 0; li < r.layers.size(); ++li)
        for (std::size_t h = 0; h < row.per_head[li].size(); ++h)
          out += row_text(std::string(to_string(row.method)), row.ratio, fmt::format("{}.{}", r.layers[li], h),
                          row.per_head[li][h]);
  }
  return out;
}

nlohmann::ordered_json eval_json(const eval::EvalResult& r, const std::string& trace) {
  nlohmann::ordered_json j;
  j["trace"] = trace;
  const auto& m = r.manifest;
  j["manifest"] = {{"layers", m.shape.layers},     {"q_heads", m.shape.q_heads}, {"kv_heads", m.shape.kv_heads},
                   {"head_dim", m.shape.head_dim}, {"positions", m.positions},   {"prefill", m.prefill},
                   {"source", m.source},           {"scale", m.softmax_scale()}};
  j["isa"] = r.isa;
  j["d_major_type"] = std::string(to_string(r.d_major_type));
  j["layers"] = r.layers;
  j["steps"] = r.steps;
  nlohmann::ordered_json dense;
  dense["bytes_per_step"] = r.dense_bytes_overall;
  dense["per_layer"] = nlohmann::ordered_json::array();
  for (std::size_t li = 0; li < r.layers.size(); ++li)
    dense["per_layer"].push_back({{"layer", r.layers[li]}, {"bytes_per_step", r.dense_bytes_per_step[li]}});
  j["dense"] = dense;
  j["results"] = nlohmann::ordered_json::array();
  for (const auto& row : r.rows) {
    nlohmann::ordered_json e;
    e["method"] = std::string(to_string(row.method));
    e["ratio"] = row.ratio;
    e["overall"] = summary_json(row.overall);
    e["per_layer"] = nlohmann::ordered_json::array();
    for (std::size_t li = 0; li < r.layers.size(); ++li) {
      nlohmann::ordered_json l = {{"layer", r.layers[li]}};
      l.update(summary_json(row.per_layer[li]));
      if (!row.per_head.empty()) {
        l["per_head"] = nlohmann::ordered_json::array();
        for (std::size_t h = 0; h < row.per_head[li].size(); ++h) {
          nlohmann::ordered_json hj = {{"head", h}};
          hj.update(summary_json(row.per_head[li][h]));
          hj.erase("bytes_per_step");
          hj.erase("transfer");
          l["per_head"].push_back(hj);
        }
      }
      e["per_layer"].push_back(l);
    }
    j["results"].push_back(e);
  }
  return j;
}

std::string eval_csv(const eval::EvalResult& r) {
  std::string out =
      "method,ratio,layer,k,bytes_per_step,transfer,rel_l2,median_rel_l2,max_rel_l2,cosine,recall,alpha_true,alpha_est,"
      "samples\n";
  auto line = [&](const eval::MethodResult& row, const std::string& layer, const eval::Summary& s) {
    out += fmt::format("{},{},{},{:.6g},{:.6g},{:.6g},{:.6g},{:.6g},{:.6g},{:.8g},{:.6g},{:.6g},{},{}\n",
                       to_string(row.method), ratio_str(row.ratio), layer, s.k, s.bytes_per_step, s.transfer, s.rel_l2,
                       s.median_rel_l2, s.max_rel_l2, s.cosine, s.recall, s.alpha_true,
                       s.alpha_est ? fmt::format("{:.6g}", *s.alpha_est) : "", s.samples);
  };
  for (const auto& row : r.rows) {
    line(row, "all", row.overall);
    for (std::size_t li = 0; li < r.layers.size(); ++li) line(row, std::to_string(r.layers[li]), row.per_layer[li]);
  }
  return out;
}

// Distinct colours (a colour-blind-safe palette plus greys) so that 7 lines stay apart.
constexpr const char* kColors[] = {"#0072B2", "#56B4E9", "#009E73", "#7FC97F",
                                   "#000000", "#D55E00", "#E69F00", "#CC79A7"};

void eval_plot(const eval::EvalResult& r, const std::string& gnuplot, const std::string& svg,
               const std::string& title) {
  // One data block per method: transfer ratio (measured) and overall relative error.
  std::map<std::string, std::vector<std::pair<double, double>>> lines;
  std::vector<std::string> order;
  for (const auto& row : r.rows) {
    const std::string name(to_string(row.method));
    if (!lines.count(name)) order.push_back(name);
    lines[name].push_back({row.overall.transfer, row.overall.rel_l2});
  }
  std::string script = "set terminal svg size 900,600 dynamic enhanced font 'sans,12'\n";
  script += "set output " + gnuplot_quoted(svg) + "\n";
  script += "set title " + gnuplot_quoted(title) + " noenhanced\n";
  script += "set xlabel 'transfer ratio (dense bytes / method bytes)'\nset ylabel 'relative L2 error vs dense'\n";
  script += "set logscale x 2\nset logscale y 10\nset grid\nset key outside right\n";
  for (std::size_t i = 0; i < order.size(); ++i) {
    script += fmt::format("$m{} << EOD\n", i);
    auto pts = lines[order[i]];
    std::sort(pts.begin(), pts.end());
    for (auto [x, y] : pts) script += fmt::format("{:.8g} {:.8g}\n", x, std::max(y, 1e-12));
    script += "EOD\n";
  }
  script += "plot ";
  for (std::size_t i = 0; i < order.size(); ++i)
    script += fmt::format("{}$m{} using 1:2 with linespoints lw 2 pt {} ps 1.2 lc rgb '{}' title '{}'", i ? ", " : "",
                          i, i + 1, kColors[i % std::size(kColors)], order[i]);
  script += "\n";

  run_gnuplot(gnuplot, script, svg);
}

}  // namespace sparq::cli
