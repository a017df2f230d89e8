// Output of `sparq eval`: the text table, JSON, CSV and the gnuplot SVG of error vs
// transfer ratio (field meanings in docs/eval-traces.md).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "sparq/tools/eval/evaluator.hpp"

namespace sparq::cli {

[[nodiscard]] std::string eval_text(const eval::EvalResult& r, const std::string& trace, bool per_layer);
[[nodiscard]] nlohmann::ordered_json eval_json(const eval::EvalResult& r, const std::string& trace);
[[nodiscard]] std::string eval_csv(const eval::EvalResult& r);

// Plots overall rel_l2 vs transfer (log2 axis), one line per method, into `svg`
// through `gnuplot` (require_gnuplot()). Throws sparq::Error when gnuplot fails.
void eval_plot(const eval::EvalResult& r, const std::string& gnuplot, const std::string& svg, const std::string& title);

}  // namespace sparq::cli
