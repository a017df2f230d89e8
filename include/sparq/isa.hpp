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

// bf16 caches on CPUs with AVX512-BF16: dense decode computes its dot products on bf16
// pairs (vdpbf16ps), with q and the softmax weights rounded to bf16 once and every sum in
// f32, so its error is of the size of the cache's own bf16 rounding (not f32's). Used
// when the active ISA is avx512 and the CPU has AVX512-BF16, unless turned off by the
// environment (SPARQ_BF16_DOT=0, read once) or by force_bf16_dot(false).
[[nodiscard]] bool cpu_supports_bf16_dot() noexcept;
[[nodiscard]] bool bf16_dot_active() noexcept;
// Turns the bf16 dot products on or off for the whole process (tests, comparisons);
// throws sparq::Error when turning them on and the CPU has no AVX512-BF16. nullopt
// returns to the automatic choice.
void force_bf16_dot(std::optional<bool> on);

}  // namespace sparq
