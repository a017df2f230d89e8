#include "eval/oracle.hpp"

#include <algorithm>

#include "reference/reference.hpp"
#include "sparq/error.hpp"

namespace sparq::eval {

std::vector<std::uint32_t> oracle_positions(std::span<const double> mass, std::size_t budget) {
  if (mass.empty()) throw Error(ErrorCode::empty_sequence, "oracle: sequence length S=0");
  if (budget == 0) throw Error(ErrorCode::invalid_argument, "oracle: budget k'=0 must be at least 1");
  return reference::top_n(mass, std::min(budget, mass.size()));  // the spec's top-n, same tie rule
}

}  // namespace sparq::eval
