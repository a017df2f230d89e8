// ISA selection: the compiled list, CPU checks, forcing, SPARQ_ISA.
#include "sparq/isa.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

#include "kernels/simd/arch_list.hpp"
#include "sparq/error.hpp"

namespace sparq {
namespace {

TEST(Isa, CompiledListIsBestFirstAndEndsWithGeneric) {
  const auto isas = compiled_isas();
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas.back(), Isa::generic);
  for (std::size_t i = 1; i < isas.size(); ++i) EXPECT_LT(int(isas[i - 1]), int(isas[i]));
  EXPECT_EQ(isas.size(), kernels::kCompiledIsaCount);
}

TEST(Isa, NamesRoundTrip) {
  for (Isa isa : compiled_isas()) EXPECT_EQ(parse_isa(to_string(isa)), isa);
  EXPECT_FALSE(parse_isa("sse9"));
}

TEST(Isa, ActiveIsSupportedAndForcingLowersIt) {
  EXPECT_TRUE(cpu_supports(Isa::generic));
  EXPECT_TRUE(cpu_supports(active_isa()));
  for (Isa isa : compiled_isas()) {
    if (!cpu_supports(isa)) {
      try {
        force_isa(isa);
        ADD_FAILURE() << "forcing unsupported " << to_string(isa) << " did not throw";
      } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::unsupported);
      }
      continue;
    }
    force_isa(isa);
    EXPECT_EQ(active_isa(), isa);
  }
  force_isa(std::nullopt);
  EXPECT_TRUE(cpu_supports(active_isa()));
}

// SPARQ_ISA is read once per process: check it in a fresh child process.
TEST(IsaDeathTest, EnvironmentVariableLowersTheChoice) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        setenv("SPARQ_ISA", "generic", 1);
        std::exit(active_isa() == Isa::generic ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
  EXPECT_EXIT(
      {
        setenv("SPARQ_ISA", "bogus", 1);
        std::exit(cpu_supports(active_isa()) ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "ignoring SPARQ_ISA=bogus");
}

}  // namespace
}  // namespace sparq
