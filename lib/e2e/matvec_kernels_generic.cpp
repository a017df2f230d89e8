// Instantiations for generic (built with that ISA's flags; see lib/e2e/CMakeLists.txt).
#include "e2e/matvec_kernels_inl.hpp"

namespace sparq::e2e {
using Arch = kernels::arch_for<Isa::generic>::type;
template struct Q8WidenRows<Arch>;
template struct Bf16Rows<Arch>;
template struct Bf16PairOrder<Arch>;
}  // namespace sparq::e2e
