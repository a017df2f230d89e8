// C API: attention methods, decode and decode_causal, profiles, instruction set control.
#include <cmath>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "capi/capi_status.hpp"
#include "capi/handles.hpp"
#include "sparq/decode.hpp"
#include "sparq/isa.hpp"

using namespace sparq;
using capi::guarded;
using capi::require;

namespace {

constexpr std::size_t kParamsV1 = sizeof(sparq_sparq_params);
constexpr std::size_t kOptionsV1 = offsetof(sparq_decode_options, workspace);  // 0.1: no workspace
constexpr std::size_t kOptionsV2 = sizeof(sparq_decode_options);
constexpr std::size_t kProfileV1 = sizeof(sparq_profile);

static_assert(SPARQ_PHASE_COUNT == kPhaseCount && SPARQ_PHASE_REALLOCATION == int(Phase::reallocation));
static_assert(SPARQ_ISA_AVX512 == int(Isa::avx512) && SPARQ_ISA_GENERIC == int(Isa::generic));
static_assert(SPARQ_GQA_PER_HEAD == int(GqaSelection::per_head));

std::string str(std::size_t v) {
  return std::to_string(v);
}

[[noreturn]] void invalid(const std::string& message) {
  throw Error(ErrorCode::invalid_argument, message);
}

SparQ to_cpp(const sparq_sparq_params& p) {
  capi::check_struct_size(p.struct_size, kParamsV1, kParamsV1, "sparq_sparq_params");
  if (!std::isfinite(p.ratio) || p.ratio < 1.0)
    invalid("ratio=" + std::to_string(p.ratio) + " is invalid: the compression ratio must be finite and >= 1");
  if (p.r == 0) invalid("r=0 is invalid: r must be in [1, head_dim] (or SPARQ_AUTO)");
  if (p.k == 0) invalid("k=0 is invalid: k must be >= 1 (or SPARQ_AUTO)");
  if (p.reallocation < -1 || p.reallocation > 1)
    invalid("reallocation=" + std::to_string(p.reallocation) + " is invalid: must be -1 (derived), 0 or 1");
  if (p.gqa != SPARQ_GQA_SHARED && p.gqa != SPARQ_GQA_PER_HEAD)
    invalid("gqa=" + std::to_string(p.gqa) + " is invalid: must be SPARQ_GQA_SHARED or SPARQ_GQA_PER_HEAD");
  SparQ m = SparQ::for_ratio(p.ratio);
  if (p.r != SPARQ_AUTO) m.r = p.r;
  if (p.k != SPARQ_AUTO) m.k = p.k;
  if (p.window != SPARQ_AUTO) m.window = p.window;
  if (p.reallocation >= 0) m.reallocation = p.reallocation == 1;
  m.gqa = GqaSelection(p.gqa);
  return m;
}

const Method& method_of(const sparq_method* m) {
  require(m, "method");
  return m->method;
}

Profile to_cpp(const sparq_profile& p) {
  Profile out;
  for (std::size_t i = 0; i < kPhaseCount; ++i) {
    const sparq_phase_stats& s = p.phases[i];
    out.phases[i] = PhaseStats{.bytes_read = s.bytes_read, .flops = s.flops, .seconds = s.seconds, .calls = s.calls};
  }
  return out;
}

void copy_back(const Profile& p, sparq_profile& out) {
  for (std::size_t i = 0; i < kPhaseCount; ++i) {
    const PhaseStats& s = p.phases[i];
    out.phases[i] = sparq_phase_stats{s.bytes_read, s.flops, s.seconds, s.calls};
  }
  out.isa = std::int32_t(p.isa);
  out.threads = p.threads;
}

// The C++ options for a call, with the caller's profile copied into `profile` (written
// back by the caller after a successful call only).
DecodeOptions to_cpp(const sparq_decode_options* o, Profile& profile) {
  DecodeOptions out;
  if (!o) return out;
  capi::check_struct_size(o->struct_size, kOptionsV1, kOptionsV2, "sparq_decode_options");
  out.scale = o->scale;
  out.kv_head_begin = o->kv_head_begin;
  out.kv_head_end = o->kv_head_end;  // SPARQ_ALL_HEADS == ~size_t{0}: every head
  if (o->struct_size >= kOptionsV2 && o->workspace) out.workspace = &o->workspace->workspace;
  if (o->profile) {
    capi::check_struct_size(o->profile->struct_size, kProfileV1, kProfileV1, "sparq_profile");
    profile = to_cpp(*o->profile);
    out.profile = &profile;
  }
  return out;
}

// Query heads of the call's KV-head range: what the C++ API infers from a span's size,
// the C caller states; q_heads must be a positive multiple of the range's KV heads (the
// C++ API checks the range itself).
std::size_t checked_q_floats(const KVCache& kv, std::size_t q_heads, std::size_t rows) {
  if (q_heads == 0) invalid("q_heads=0 is invalid: a call needs at least one query head per KV head");
  return capi::checked_product(rows, q_heads, kv.config().head_dim, "n*q_heads*head_dim");
}

}  // namespace

extern "C" {

void sparq_sparq_params_init(sparq_sparq_params* params) {
  if (!params) return;
  *params = sparq_sparq_params{};
  params->struct_size = sizeof(sparq_sparq_params);
  params->ratio = 8.0;
  params->r = SPARQ_AUTO;
  params->k = SPARQ_AUTO;
  params->window = SPARQ_AUTO;
  params->reallocation = -1;
  params->gqa = SPARQ_GQA_SHARED;
}

sparq_status sparq_method_dense(sparq_method** out) {
  return guarded([&] {
    require(out, "out");
    *out = std::make_unique<sparq_method>(sparq_method{Dense{}}).release();
  });
}

sparq_status sparq_method_sparq(const sparq_sparq_params* params, sparq_method** out) {
  return guarded([&] {
    require(params, "params");
    require(out, "out");
    *out = std::make_unique<sparq_method>(sparq_method{to_cpp(*params)}).release();
  });
}

void sparq_method_destroy(sparq_method* method) {
  delete method;
}

sparq_status sparq_workspace_create(sparq_workspace** out) {
  return guarded([&] {
    require(out, "out");
    *out = std::make_unique<sparq_workspace>().release();
  });
}

void sparq_workspace_destroy(sparq_workspace* workspace) {
  delete workspace;
}

size_t sparq_workspace_bytes(const sparq_workspace* workspace) {
  return workspace ? workspace->workspace.bytes() : 0;
}

void sparq_workspace_release(sparq_workspace* workspace) {
  if (workspace) workspace->workspace.release();
}

sparq_status sparq_method_is_sparq(const sparq_method* method, int* out) {
  return guarded([&] {
    const Method& m = method_of(method);
    require(out, "out");
    *out = std::holds_alternative<SparQ>(m) ? 1 : 0;
  });
}

void sparq_profile_init(sparq_profile* profile) {
  if (!profile) return;
  *profile = sparq_profile{};
  profile->struct_size = sizeof(sparq_profile);
  profile->isa = SPARQ_ISA_GENERIC;
}

void sparq_decode_options_init(sparq_decode_options* options) {
  if (!options) return;
  *options = sparq_decode_options{};
  options->struct_size = sizeof(sparq_decode_options);
  options->kv_head_end = SPARQ_ALL_HEADS;
}

sparq_status sparq_decode(const sparq_cache* cache, size_t layer, const sparq_method* method, size_t q_heads,
                          const sparq_decode_item* items, size_t n_items, const sparq_decode_options* options) {
  return guarded([&] {
    require(cache, "cache");
    const Method& m = method_of(method);
    if (n_items > 0) require(items, "items");
    const std::size_t n = checked_q_floats(cache->cache, q_heads, 1);
    std::vector<DecodeItem> batch(n_items);
    for (std::size_t b = 0; b < n_items; ++b) {
      const sparq_decode_item& it = items[b];
      const std::string name = "items[" + str(b) + "]";
      require(it.q, (name + ".q").c_str());
      require(it.out, (name + ".out").c_str());
      batch[b] = DecodeItem{.seq = it.seq,
                            .q = std::span(it.q, n),
                            .out = std::span(it.out, n),
                            .lse = it.lse ? std::span(it.lse, q_heads) : std::span<float>{},
                            .alpha = it.alpha ? std::span(it.alpha, q_heads) : std::span<float>{}};
    }
    Profile profile;
    const DecodeOptions o = to_cpp(options, profile);
    decode(cache->cache, layer, m, batch, o);
    if (o.profile) copy_back(profile, *options->profile);
  });
}

sparq_status sparq_decode_causal(const sparq_cache* cache, size_t layer, sparq_seq_id seq, size_t q_heads,
                                 const float* q, float* out, size_t n_new, const sparq_decode_options* options) {
  return guarded([&] {
    require(cache, "cache");
    require(q, "q");
    require(out, "out");
    const std::size_t n = checked_q_floats(cache->cache, q_heads, n_new);
    Profile profile;
    const DecodeOptions o = to_cpp(options, profile);
    decode_causal(cache->cache, layer, seq, std::span(q, n), std::span(out, n), n_new, o);
    if (o.profile) copy_back(profile, *options->profile);
  });
}

const char* sparq_isa_name(int32_t isa) {
  if (isa == SPARQ_ISA_AUTO) return "auto";
  if (isa < SPARQ_ISA_AVX512 || isa > SPARQ_ISA_GENERIC) return "unknown";
  return to_string(Isa(isa)).data();  // to_string returns literals
}

int32_t sparq_active_isa(void) {
  return std::int32_t(active_isa());
}

int sparq_cpu_supports_isa(int32_t isa) {
  if (isa < SPARQ_ISA_AVX512 || isa > SPARQ_ISA_GENERIC) return 0;
  for (const Isa compiled : compiled_isas())
    if (compiled == Isa(isa)) return cpu_supports(compiled) ? 1 : 0;
  return 0;
}

sparq_status sparq_force_isa(int32_t isa) {
  return guarded([&] {
    if (isa == SPARQ_ISA_AUTO) return force_isa(std::nullopt);
    if (isa < SPARQ_ISA_AVX512 || isa > SPARQ_ISA_GENERIC)
      invalid("isa=" + std::to_string(isa) + " is not a sparq_isa: must be SPARQ_ISA_AUTO, _AVX512, _AVX2 or _GENERIC");
    force_isa(Isa(isa));
  });
}

}  // extern "C"
