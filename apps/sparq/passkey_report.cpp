#include "passkey_report.hpp"

#include <fmt/core.h>

#include <cmath>
#include <fstream>
#include <optional>
#include <sstream>

#include "sparq/error.hpp"

namespace sparq::cli {

namespace {

struct Tally {
  std::size_t correct = 0, total = 0;
  void add(bool ok) { correct += ok, ++total; }
  [[nodiscard]] std::string percent() const {
    return total ? fmt::format("{:.0f}", 100.0 * double(correct) / double(total)) : "–";
  }
  [[nodiscard]] nlohmann::json json() const {
    return {{"correct", correct},
            {"total", total},
            {"accuracy", total ? nlohmann::json(double(correct) / double(total)) : nlohmann::json(nullptr)}};
  }
};

}  // namespace

long depth_key(double depth) {
  return depth < 0 ? -1 : std::lround(depth * 10000.0);
}

OutcomeKey key_of(const Outcome& o) {
  return {o.length, depth_key(o.depth), o.index, o.method};
}

nlohmann::ordered_json outcome_json(const Outcome& o, const RunIdentity& id) {
  nlohmann::ordered_json j;
  j["task"] = o.task;
  j["length"] = o.length;
  j["depth"] = o.depth < 0 ? nlohmann::json(nullptr) : nlohmann::json(o.depth);
  j["index"] = o.index;
  j["key"] = o.key;
  j["method"] = o.method;
  j["correct"] = o.correct;
  j["output"] = o.output;
  j["matched"] = o.matched;
  j["bytes_per_step"] = o.bytes_per_step;
  j["seed"] = id.seed;
  j["keys"] = id.keys;
  j["model_sha256"] = id.model_sha256;
  j["source_sha256"] = id.source_sha256;
  return j;
}

std::map<OutcomeKey, Outcome> read_results(const std::string& path, const RunIdentity& id) {
  std::map<OutcomeKey, Outcome> out;
  std::ifstream in(path);
  if (!in) return out;
  std::string line;
  for (std::size_t n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    try {
      const auto j = nlohmann::json::parse(line);
      const RunIdentity got{j.at("task"), j.at("model_sha256"), j.at("source_sha256"), j.at("seed"), j.at("keys")};
      if (got.task != id.task || got.model_sha256 != id.model_sha256 || got.source_sha256 != id.source_sha256 ||
          got.seed != id.seed || got.keys != id.keys)
        throw Error(ErrorCode::invalid_argument,
                    fmt::format("{}:{} holds results of another run (task {}, model sha256 {}…, seed {}, {} keys per "
                                "cell, source sha256 {}…): use another --results file",
                                path, n, got.task, got.model_sha256.substr(0, 12), got.seed, got.keys,
                                got.source_sha256.substr(0, 12)));
      Outcome o;
      o.task = got.task;
      o.length = j.at("length");
      o.depth = j.at("depth").is_null() ? -1.0 : j.at("depth").get<double>();
      o.index = j.at("index");
      o.key = j.at("key");
      o.method = j.at("method");
      o.correct = j.at("correct");
      o.output = j.at("output");
      o.matched = j.at("matched");
      o.bytes_per_step = j.value("bytes_per_step", 0.0);
      out[key_of(o)] = o;
    } catch (const nlohmann::json::exception& e) {
      throw Error(ErrorCode::bad_file, fmt::format("{}:{}: not a passkey result record: {}", path, n, e.what()));
    }
  }
  return out;
}

namespace {

// Tallies per method, per length, per (length, depth) over the records the spec covers.
struct Tallies {
  std::map<std::string, Tally> method;
  std::map<std::pair<std::string, std::size_t>, Tally> length;
  std::map<std::tuple<std::string, std::size_t, long>, Tally> cell;
  // Per method (and per (method, length)): sum and count of dense bytes / method bytes per
  // decode step, over the prompts where both were recorded.
  std::map<std::string, std::pair<double, std::size_t>> transfer;
  std::map<std::pair<std::string, std::size_t>, std::pair<double, std::size_t>> transfer_length;
};

Tallies tally(const std::map<OutcomeKey, Outcome>& results, const ReportSpec& spec) {
  Tallies t;
  for (const auto& [key, o] : results) {
    if (std::find(spec.methods.begin(), spec.methods.end(), o.method) == spec.methods.end()) continue;
    if (std::find(spec.lengths.begin(), spec.lengths.end(), o.length) == spec.lengths.end()) continue;
    t.method[o.method].add(o.correct);
    t.length[{o.method, o.length}].add(o.correct);
    t.cell[{o.method, o.length, depth_key(o.depth)}].add(o.correct);
    const auto dense = results.find({o.length, depth_key(o.depth), o.index, "dense"});
    if (o.bytes_per_step > 0 && dense != results.end() && dense->second.bytes_per_step > 0) {
      const double x = dense->second.bytes_per_step / o.bytes_per_step;
      auto& a = t.transfer[o.method];
      a.first += x, ++a.second;
      auto& b = t.transfer_length[{o.method, o.length}];
      b.first += x, ++b.second;
    }
  }
  return t;
}

std::string length_label(std::size_t L) {
  return L % 1024 == 0 ? fmt::format("{}k", L / 1024) : std::to_string(L);
}

}  // namespace

namespace {

// "sparq-real:8" -> ("sparq-real", "8"); "dense" -> ("dense", "").
std::pair<std::string, std::string> split_name(const std::string& m) {
  const std::size_t colon = m.find(':');
  return colon == std::string::npos ? std::pair{m, std::string()} : std::pair{m.substr(0, colon), m.substr(colon + 1)};
}

// Rows: method kinds in first-seen order; columns: ratios in first-seen order. A cell is
// the accuracy over `lengths` (all of them when empty); dense fills every column.
std::string ratio_table(const Tallies& t, const ReportSpec& spec, std::optional<std::size_t> length,
                        bool transfer = false) {
  std::vector<std::string> kinds, ratios;
  for (const std::string& m : spec.methods) {
    const auto [kind, ratio] = split_name(m);
    if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) kinds.push_back(kind);
    if (!ratio.empty() && std::find(ratios.begin(), ratios.end(), ratio) == ratios.end()) ratios.push_back(ratio);
  }
  auto cell = [&](const std::string& m) -> std::string {
    if (transfer) {
      const std::pair<double, std::size_t> none{};
      const auto& [sum, n] =
          length ? (t.transfer_length.contains({m, *length}) ? t.transfer_length.at({m, *length}) : none)
                 : (t.transfer.contains(m) ? t.transfer.at(m) : none);
      return n ? fmt::format("{:.1f}", sum / double(n)) : "–";
    }
    if (length) {
      const auto it = t.length.find({m, *length});
      return it == t.length.end() ? "–" : it->second.percent();
    }
    const auto it = t.method.find(m);
    return it == t.method.end() ? "–" : it->second.percent();
  };
  std::ostringstream s;
  s << "| method |";
  for (const auto& r : ratios) s << " " << r << "x |";
  s << "\n|---|";
  for (std::size_t i = 0; i < ratios.size(); ++i) s << "---:|";
  s << "\n";
  for (const std::string& kind : kinds) {
    s << "| " << kind << " |";
    for (const auto& r : ratios) {
      const std::string m = kind == "dense" ? kind : kind + ":" + r;
      const bool listed = std::find(spec.methods.begin(), spec.methods.end(), m) != spec.methods.end();
      s << " " << (listed ? cell(m) : "") << " |";
    }
    s << "\n";
  }
  return s.str();
}

}  // namespace

std::string markdown_report(const std::map<OutcomeKey, Outcome>& results, const ReportSpec& spec) {
  const Tallies t = tally(results, spec);
  std::ostringstream s;
  bool any_ratio = false;
  for (const std::string& m : spec.methods) any_ratio |= !split_name(m).second.empty();
  if (any_ratio) {
    s << "All lengths (% exact match, by compression ratio):\n\n" << ratio_table(t, spec, std::nullopt) << "\n";
    for (std::size_t L : spec.lengths) s << length_label(L) << ":\n\n" << ratio_table(t, spec, L) << "\n";
    if (!t.transfer.empty()) {
      s << "Measured transfer (dense bytes / method bytes per decode step, mean over prompts), all lengths:\n\n"
        << ratio_table(t, spec, std::nullopt, true) << "\n";
      for (std::size_t L : spec.lengths)
        s << "Transfer, " << length_label(L) << ":\n\n" << ratio_table(t, spec, L, true) << "\n";
    }
    s << "By method and length:\n\n";
  }
  s << "| method |";
  for (std::size_t L : spec.lengths) s << ' ' << length_label(L) << " |";
  s << " all | prompts |\n|---|";
  for (std::size_t i = 0; i < spec.lengths.size(); ++i) s << "---:|";
  s << "---:|---:|\n";
  for (const std::string& m : spec.methods) {
    s << "| " << m << " |";
    for (std::size_t L : spec.lengths) {
      const auto it = t.length.find({m, L});
      s << ' ' << (it == t.length.end() ? "–" : it->second.percent()) << " |";
    }
    const auto it = t.method.find(m);
    s << ' ' << (it == t.method.end() ? "–" : it->second.percent()) << " | "
      << (it == t.method.end() ? 0 : it->second.total) << " |\n";
  }
  if (!spec.by_depth || spec.depths.empty()) return s.str();
  for (const std::string& m : spec.methods) {
    s << "\n" << m << " (% correct by depth and length)\n\n| depth |";
    for (std::size_t L : spec.lengths) s << ' ' << length_label(L) << " |";
    s << "\n|---|";
    for (std::size_t i = 0; i < spec.lengths.size(); ++i) s << "---:|";
    s << "\n";
    for (double d : spec.depths) {
      s << fmt::format("| {:.0f}% |", 100.0 * d);
      for (std::size_t L : spec.lengths) {
        const auto it = t.cell.find({m, L, depth_key(d)});
        s << ' ' << (it == t.cell.end() ? "–" : it->second.percent()) << " |";
      }
      s << "\n";
    }
  }
  return s.str();
}

nlohmann::ordered_json json_report(const std::map<OutcomeKey, Outcome>& results, const ReportSpec& spec) {
  const Tallies t = tally(results, spec);
  nlohmann::ordered_json by_method = nlohmann::json::array();
  for (const std::string& m : spec.methods) {
    nlohmann::ordered_json j;
    j["method"] = m;
    const auto it = t.method.find(m);
    j["all"] = it == t.method.end() ? Tally{}.json() : it->second.json();
    nlohmann::ordered_json lengths = nlohmann::json::object();
    for (std::size_t L : spec.lengths) {
      const auto lt = t.length.find({m, L});
      lengths[std::to_string(L)] = lt == t.length.end() ? Tally{}.json() : lt->second.json();
    }
    j["by_length"] = lengths;
    const auto tr = t.transfer.find(m);
    j["transfer"] =
        tr == t.transfer.end() ? nlohmann::json(nullptr) : nlohmann::json(tr->second.first / double(tr->second.second));
    nlohmann::ordered_json cells = nlohmann::json::array();
    for (std::size_t L : spec.lengths)
      for (double d : spec.depths) {
        const auto ct = t.cell.find({m, L, depth_key(d)});
        nlohmann::ordered_json c = ct == t.cell.end() ? Tally{}.json() : ct->second.json();
        c["length"] = L;
        c["depth"] = d;
        cells.push_back(c);
      }
    j["by_cell"] = cells;
    by_method.push_back(j);
  }
  return by_method;
}

std::string prompt_json_line(const eval::TaskPrompt& p) {
  nlohmann::ordered_json j;
  j["task"] = p.task;
  j["length"] = p.length;
  j["depth"] = p.depth ? nlohmann::json(*p.depth) : nlohmann::json(nullptr);
  j["key"] = p.key.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.key);
  j["prompt"] = p.prompt;
  j["answer"] = p.answer;
  return j.dump(-1, ' ', true) + "\n";  // ASCII escapes, as Python's json.dumps
}

std::vector<eval::TaskPrompt> read_prompt_lines(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(ErrorCode::io_error, fmt::format("{}: cannot open", path));
  std::vector<eval::TaskPrompt> out;
  std::string line;
  for (std::size_t n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    try {
      const auto j = nlohmann::json::parse(line);
      eval::TaskPrompt p;
      p.task = j.at("task");
      p.length = j.at("length");
      if (!j.at("depth").is_null()) p.depth = j.at("depth").get<double>();
      if (!j.at("key").is_null()) p.key = j.at("key");
      p.prompt = j.at("prompt");
      p.answer = j.at("answer");
      if (p.task != "passkey" && p.task != "copy")
        throw Error(ErrorCode::bad_file, fmt::format("{}:{}: task '{}' is not passkey or copy", path, n, p.task));
      if (p.prompt.size() < p.question_bytes() || p.answer.empty())
        throw Error(ErrorCode::bad_file, fmt::format("{}:{}: prompt or answer too short", path, n));
      out.push_back(std::move(p));
    } catch (const nlohmann::json::exception& e) {
      throw Error(ErrorCode::bad_file, fmt::format("{}:{}: not a prompt record: {}", path, n, e.what()));
    }
  }
  return out;
}

}  // namespace sparq::cli
