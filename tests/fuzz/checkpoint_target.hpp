// Fuzz target of the Llama checkpoint parser (lib/model, parse_llama_checkpoint): any
// byte string is parsed into weights whose every tensor has the size its header
// implies, or refused with bad_file; nothing else (no other exception, no allocation
// beyond the input's size: libFuzzer's -malloc_limit_mb catches those).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "fuzz_check.hpp"
#include "sparq/error.hpp"
#include "sparq/tools/model/llama_checkpoint.hpp"

namespace sparq::fuzz {

// Returns whether the input was parsed (rather than refused).
inline bool checkpoint_one(const std::uint8_t* data, std::size_t size) {
  using model::LlamaWeights;
  try {
    const LlamaWeights w = model::parse_llama_checkpoint(std::as_bytes(std::span(data, size)), "fuzz.bin");
    const model::LlamaConfig& c = w.config;
    SPARQ_FUZZ_CHECK(c.n_heads > 0 && c.dim % c.n_heads == 0 && c.n_kv_heads > 0 && c.n_heads % c.n_kv_heads == 0,
                     "parsed an inconsistent header");
    const std::size_t dim = c.dim, kv = c.kv_dim(), hid = c.hidden_dim;
    SPARQ_FUZZ_CHECK(w.token_embedding.size() == c.vocab_size * dim && w.classifier.size() == c.vocab_size * dim &&
                         w.final_norm.size() == dim && w.layers.size() == c.n_layers,
                     "parsed tensors disagree with the header");
    for (const model::LlamaLayer& l : w.layers)
      SPARQ_FUZZ_CHECK(l.attn_norm.size() == dim && l.wq.size() == dim * dim && l.wk.size() == kv * dim &&
                           l.wv.size() == kv * dim && l.wo.size() == dim * dim && l.ffn_norm.size() == dim &&
                           l.w1.size() == hid * dim && l.w2.size() == dim * hid && l.w3.size() == hid * dim,
                       "a parsed layer disagrees with the header");
    return true;
  } catch (const Error& e) {
    SPARQ_FUZZ_CHECK(e.code() == ErrorCode::bad_file, "refused with %s, not bad_file: %s",
                     std::string(to_string(e.code())).c_str(), e.what());
    return false;
  }
}

}  // namespace sparq::fuzz
