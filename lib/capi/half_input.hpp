// 16-bit (IEEE binary16, bfloat16) inputs for the C API and the Python binding, until the
// cache appends them directly (issue 21's design note in docs/c-api.md): widening to f32 is
// exact, so a value stored through f32 is the one a direct conversion would store.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sparq/kv_cache.hpp"

namespace sparq::capi {

enum class Half : std::uint8_t { f16, bf16 };

// out[i] = in[i] widened to f32 (exact), for i < n.
void widen(Half type, const std::uint16_t* in, float* out, std::size_t n) noexcept;
// out[i] = in[i] rounded to nearest even (NaN stays NaN, overflow to Inf), for i < n.
void narrow(Half type, const float* in, std::uint16_t* out, std::size_t n) noexcept;

// KVCache::append from 16-bit keys and values [n_tokens][kv_heads][head_dim]. Widens the
// whole call into one temporary f32 buffer (2 * n_tokens * kv_heads * head_dim floats,
// freed on return) and makes one append, so the call stays all-or-nothing: chunked
// appends could not be undone on a later chunk's failure.
void append_half(KVCache& cache, SeqId seq, std::size_t layer, const std::uint16_t* keys, const std::uint16_t* values,
                 std::size_t n_tokens, Half type);

}  // namespace sparq::capi
