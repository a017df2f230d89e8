// Runtime ISA selection (include/sparq/isa.hpp). Built at the x86-64 baseline.
#include "sparq/isa.hpp"

#include <cpuid.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "kernels/simd/arch_list.hpp"
#include "sparq/error.hpp"

namespace sparq {

std::string_view to_string(Isa isa) noexcept {
  switch (isa) {
    case Isa::avx512:
      return "avx512";
    case Isa::avx2:
      return "avx2";
    case Isa::generic:
      return "generic";
  }
  return "?";
}

std::optional<Isa> parse_isa(std::string_view name) noexcept {
  for (Isa isa : {Isa::avx512, Isa::avx2, Isa::generic})
    if (name == to_string(isa)) return isa;
  return std::nullopt;
}

std::span<const Isa> compiled_isas() noexcept {
  return kernels::kCompiledIsas;
}

namespace {

template <Isa I>
bool xsimd_runs() noexcept {
  using Arch = typename kernels::arch_for<I>::type;
  return Arch::version() <= xsimd::available_architectures().best;
}

// F16C (CPUID.1:ECX bit 29), which xsimd does not track; clang 14's
// __builtin_cpu_supports does not know "f16c", so read CPUID directly.
bool cpu_has_f16c() noexcept {
  unsigned a = 0, b = 0, c = 0, d = 0;
  return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
}

// xsimd 8.1 reads CPUID only; __builtin_cpu_supports also checks that the OS saves the
// wide registers (XGETBV).
bool supported(Isa isa) noexcept {
  __builtin_cpu_init();
  switch (isa) {
    case Isa::avx512:
      return xsimd_runs<Isa::avx512>() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512cd") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma");
    case Isa::avx2:
      return xsimd_runs<Isa::avx2>() && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             cpu_has_f16c();
    case Isa::generic:
      return true;
  }
  return false;
}

Isa best_supported() noexcept {
  for (Isa isa : kernels::kCompiledIsas)
    if (supported(isa)) return isa;
  return Isa::generic;
}

// The automatic choice: the best the CPU runs, lowered (never raised) by SPARQ_ISA.
Isa automatic_isa() noexcept {
  static const Isa chosen = [] {
    const Isa best = best_supported();
    const char* env = std::getenv("SPARQ_ISA");
    if (!env || !*env) return best;
    const auto wanted = parse_isa(env);
    if (!wanted) {
      std::fprintf(stderr, "sparq: ignoring SPARQ_ISA=%s: expected avx512, avx2 or generic\n", env);
      return best;
    }
    if (!supported(*wanted)) {
      std::fprintf(stderr, "sparq: SPARQ_ISA=%s is not supported by this CPU; using %s\n", env,
                   std::string(to_string(best)).c_str());
      return best;
    }
    // Enumerators are ordered best first: a larger value is a lower ISA.
    return static_cast<int>(*wanted) > static_cast<int>(best) ? *wanted : best;
  }();
  return chosen;
}

// -1: automatic; otherwise the forced Isa's value.
std::atomic<int> g_forced{-1};

}  // namespace

bool cpu_supports(Isa isa) noexcept {
  static const bool cache[] = {supported(Isa::avx512), supported(Isa::avx2), supported(Isa::generic)};
  return cache[static_cast<int>(isa)];
}

Isa active_isa() noexcept {
  const int forced = g_forced.load(std::memory_order_relaxed);
  return forced >= 0 ? static_cast<Isa>(forced) : automatic_isa();
}

void force_isa(std::optional<Isa> isa) {
  if (isa && !cpu_supports(*isa))
    throw Error(ErrorCode::unsupported, "isa=" + std::string(to_string(*isa)) +
                                            " is not supported by this CPU: supported variants are those for which "
                                            "cpu_supports() is true (best here: " +
                                            std::string(to_string(best_supported())) + ")");
  g_forced.store(isa ? static_cast<int>(*isa) : -1, std::memory_order_relaxed);
}

}  // namespace sparq
