// Instantiations for avx2 (built with that ISA's flags; see lib/roofline/CMakeLists.txt).
#include "roofline/peak_kernels_impl.hpp"

namespace sparq::profile {
using Arch = kernels::arch_for<Isa::avx2>::type;
template struct ReadSum<Arch>;
template struct ScatterSum<Arch>;
template struct FmaChains<Arch>;
}  // namespace sparq::profile
