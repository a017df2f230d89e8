#include "sparq/tools/eval/methods.hpp"

#include <cassert>

namespace sparq::eval {

std::string_view to_string(EvalMethod m) noexcept {
  switch (m) {
    case EvalMethod::sparq:
      return "sparq";
    case EvalMethod::sparq_per_head:
      return "sparq-per-head";
    case EvalMethod::sparq_noreal:
      return "sparq-noreal";
    case EvalMethod::sparq_nowindow:
      return "sparq-nowindow";
    case EvalMethod::oracle:
      return "oracle";
    case EvalMethod::h2o:
      return "h2o";
    case EvalMethod::sink_window:
      return "sink-window";
  }
  return "?";
}

std::optional<EvalMethod> parse_eval_method(std::string_view name) noexcept {
  for (EvalMethod m : kAllMethods)
    if (to_string(m) == name) return m;
  return std::nullopt;
}

bool runs_in_library(EvalMethod m) noexcept {
  return m == EvalMethod::sparq || m == EvalMethod::sparq_per_head || m == EvalMethod::sparq_noreal ||
         m == EvalMethod::sparq_nowindow;
}

SparQ sparq_variant(EvalMethod m, double ratio) {
  assert(runs_in_library(m));
  SparQ s = SparQ::for_ratio(ratio);
  s.gqa = m == EvalMethod::sparq_per_head ? GqaSelection::per_head : GqaSelection::shared;
  s.reallocation = m != EvalMethod::sparq_noreal;
  if (m == EvalMethod::sparq_nowindow) s.window = 0;
  return s;
}

}  // namespace sparq::eval
