#include "sparq/tools/model/attention_methods.hpp"

#include <fmt/core.h>

#include <cmath>
#include <stdexcept>

#include "sparq/error.hpp"

namespace sparq::model {

namespace {

struct Kind {
  const char* name;
  std::optional<GqaSelection> gqa;
  std::optional<bool> reallocation;
  std::optional<BaselineKind> baseline;
};

const Kind kKinds[] = {
    {"sparq", std::nullopt, std::nullopt, std::nullopt},
    {"sparq-real", GqaSelection::shared, true, std::nullopt},
    {"sparq-noreal", GqaSelection::shared, false, std::nullopt},
    {"sparq-per-head", GqaSelection::per_head, std::nullopt, std::nullopt},
    {"sparq-per-head-real", GqaSelection::per_head, true, std::nullopt},
    {"sparq-per-head-noreal", GqaSelection::per_head, false, std::nullopt},
    {"oracle", std::nullopt, std::nullopt, BaselineKind::oracle},
    {"h2o", std::nullopt, std::nullopt, BaselineKind::h2o},
    {"window", std::nullopt, std::nullopt, BaselineKind::sink_window},
    {"sink-window", std::nullopt, std::nullopt, BaselineKind::sink_window},
};

// What `all` expands to (before the ratios).
const char* const kAll[] = {"sparq-real", "sparq-noreal", "sparq-per-head-real", "sparq-per-head-noreal", "oracle",
                            "h2o",        "window"};

[[noreturn]] void invalid(const std::string& what) {
  throw Error(ErrorCode::invalid_argument, what);
}

std::string ratio_text(double r) {
  return fmt::format("{}", r);  // shortest round trip: 8, 2.5
}

NamedMethod make(const Kind& kind, double ratio, const SparQOverrides& o) {
  const std::string name =
      fmt::format("{}:{}", kind.name == std::string_view("sink-window") ? "window" : kind.name, ratio_text(ratio));
  if (kind.baseline) return {name, Baseline{.kind = *kind.baseline, .ratio = ratio, .sinks = o.sinks}, ratio};
  SparQ m = SparQ::for_ratio(ratio);
  m.r = o.r;
  m.k = o.k;
  m.window = o.window;
  m.reallocation = kind.reallocation ? kind.reallocation : o.reallocation;
  m.gqa = kind.gqa ? *kind.gqa : o.gqa.value_or(GqaSelection::shared);
  return {name, m, ratio};
}

double parse_ratio(std::string_view entry, std::string_view text) {
  double ratio = 0.0;
  try {
    std::size_t used = 0;
    ratio = std::stod(std::string(text), &used);
    if (used != text.size()) throw std::invalid_argument("trailing");
  } catch (const std::exception&) {
    invalid(fmt::format("--method entry '{}': the ratio after ':' must be a number", entry));
  }
  if (!std::isfinite(ratio) || ratio < 1.0)
    invalid(fmt::format("--method entry '{}': ratio={} must be a finite number >= 1", entry, ratio_text(ratio)));
  return ratio;
}

}  // namespace

std::vector<NamedMethod> parse_attention_methods(std::string_view list, std::span<const double> default_ratios,
                                                 const SparQOverrides& overrides) {
  if (default_ratios.empty()) invalid("no default compression ratio given");
  for (double r : default_ratios)
    if (!std::isfinite(r) || r < 1.0) invalid(fmt::format("ratio={} must be a finite number >= 1", ratio_text(r)));
  std::vector<NamedMethod> out;
  std::size_t start = 0;
  while (start <= list.size()) {
    const std::size_t comma = std::min(list.find(',', start), list.size());
    const std::string_view entry = list.substr(start, comma - start);
    start = comma + 1;
    if (entry.empty()) {
      if (list.empty()) break;
      invalid(fmt::format("--method '{}' has an empty entry", list));
    }
    if (entry == "dense") {
      out.push_back({"dense", Dense{}, 0.0});
      continue;
    }
    if (entry == "all") {
      out.push_back({"dense", Dense{}, 0.0});
      for (const char* k : kAll)
        for (const Kind& kind : kKinds)
          if (kind.name == std::string_view(k))
            for (double r : default_ratios) out.push_back(make(kind, r, overrides));
      continue;
    }
    const std::size_t colon = entry.find(':');
    const std::string_view head = entry.substr(0, colon);
    const Kind* kind = nullptr;
    for (const Kind& k : kKinds)
      if (head == k.name) kind = &k;
    if (kind == nullptr) invalid(fmt::format("--method entry '{}' is unknown: use {}", entry, attention_method_help()));
    if (colon != std::string_view::npos) {
      out.push_back(make(*kind, parse_ratio(entry, entry.substr(colon + 1)), overrides));
    } else {
      for (double r : default_ratios) out.push_back(make(*kind, r, overrides));
    }
  }
  if (out.empty()) invalid("--method is empty: give at least one method, e.g. dense,sparq:8");
  for (std::size_t i = 0; i < out.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (out[i].name == out[j].name) invalid(fmt::format("--method lists {} twice", out[i].name));
  return out;
}

std::string attention_method_help() {
  std::string s = "dense";
  for (const Kind& k : kKinds) s += fmt::format(", {}[:C]", k.name);
  return s + ", all";
}

bool needs_attention_mass(std::span<const NamedMethod> methods) {
  for (const NamedMethod& m : methods)
    if (const auto* b = std::get_if<Baseline>(&m.method); b && b->kind == BaselineKind::h2o) return true;
  return false;
}

}  // namespace sparq::model
