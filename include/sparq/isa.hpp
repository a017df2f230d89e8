// Runtime SIMD dispatch: which instruction set the kernels use.
#pragma once

#include <optional>
#include <span>
#include <string_view>

namespace sparq {

// Compiled kernel variants, best first. `generic` runs on any x86-64 (SSE2).
enum class Isa { avx512, avx2, generic };

[[nodiscard]] std::string_view to_string(Isa isa) noexcept;
[[nodiscard]] std::optional<Isa> parse_isa(std::string_view name) noexcept;

// All variants compiled into this build, best first.
[[nodiscard]] std::span<const Isa> compiled_isas() noexcept;
// Whether this CPU can run the variant.
[[nodiscard]] bool cpu_supports(Isa isa) noexcept;
// The best variant this CPU runs, lowered by the SPARQ_ISA environment variable
// (read once) or by force_isa(). Never higher than what the CPU supports.
[[nodiscard]] Isa active_isa() noexcept;
// Forces a variant for the whole process (tests, comparisons); throws sparq::Error
// when the CPU cannot run it. nullopt returns to the automatic choice.
void force_isa(std::optional<Isa> isa);

}  // namespace sparq
