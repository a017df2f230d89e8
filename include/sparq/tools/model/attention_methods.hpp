// Attention methods of the model commands by name (`--method dense,sparq:8,h2o:8`).
//
// Entries, C a compression ratio >= 1 (`:C` may be left out: the default ratio then
// applies):
//   dense
//   sparq:C                      SparQ with the library defaults (DESIGN §1; for a GQA
//                                model: shared selection, no reallocation)
//   sparq-real:C, sparq-noreal:C  shared selection with / without reallocation
//   sparq-per-head:C             per-head selection, library default reallocation
//   sparq-per-head-real:C, sparq-per-head-noreal:C
//   oracle:C                     exact top-k' at equal bytes
//   h2o:C                        Heavy-Hitter Oracle at equal bytes
//   window:C (or sink-window:C)  4 sink positions + local window at equal bytes
// `all` stands for dense and every other kind (the explicit -real/-noreal SparQ variants)
// at each of the default ratios.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sparq/tools/model/llama_model.hpp"

namespace sparq::model {

struct NamedMethod {
  std::string name;  // canonical: "dense", "sparq-per-head-real:8"
  AttentionMethod method;
  double ratio = 0.0;  // 0 for dense
};

// Overrides applied to every SparQ entry before its own suffix (-real, -per-head, ...).
struct SparQOverrides {
  std::optional<std::size_t> r, k, window;
  std::optional<bool> reallocation;
  std::optional<GqaSelection> gqa;
  std::size_t sinks = 4;  // of window entries
};

// Parses a comma-separated list. Entries without `:C` take each of `default_ratios`
// (at least one). Throws sparq::Error(invalid_argument) naming the bad entry.
[[nodiscard]] std::vector<NamedMethod> parse_attention_methods(std::string_view list,
                                                               std::span<const double> default_ratios,
                                                               const SparQOverrides& overrides = {});

// The names of the kinds above, for help texts.
[[nodiscard]] std::string attention_method_help();

// True when some entry is H2O (the prefill must then record attention mass).
[[nodiscard]] bool needs_attention_mass(std::span<const NamedMethod> methods);

}  // namespace sparq::model
