// The attention methods `sparq eval` compares with dense, by name (docs/eval-traces.md).
#pragma once

#include <optional>
#include <span>
#include <string_view>

#include "sparq/method.hpp"

namespace sparq::eval {

enum class EvalMethod { sparq, sparq_per_head, sparq_noreal, sparq_nowindow, oracle, h2o, sink_window };

inline constexpr EvalMethod kAllMethods[] = {EvalMethod::sparq,        EvalMethod::sparq_per_head,
                                             EvalMethod::sparq_noreal, EvalMethod::sparq_nowindow,
                                             EvalMethod::oracle,       EvalMethod::h2o,
                                             EvalMethod::sink_window};

[[nodiscard]] std::string_view to_string(EvalMethod m) noexcept;
// "sparq", "sparq-per-head", "sparq-noreal", "sparq-nowindow", "oracle", "h2o", "sink-window".
[[nodiscard]] std::optional<EvalMethod> parse_eval_method(std::string_view name) noexcept;

// True for the variants that run through sparq::decode.
[[nodiscard]] bool runs_in_library(EvalMethod m) noexcept;

// The library method of a SparQ variant at compression ratio c: shared or per-head
// selection, reallocation set explicitly (on, off for sparq-noreal), window l = 0 for
// sparq-nowindow (else the default floor(k/4)). Requires runs_in_library(m).
[[nodiscard]] SparQ sparq_variant(EvalMethod m, double ratio);

}  // namespace sparq::eval
