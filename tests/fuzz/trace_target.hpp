// Fuzz target of the decode-trace reader (lib/eval: read_trace_manifest, then
// read_trace_layer of layer 0). An input is up to four files separated by
// kTracePartSeparator: manifest.json, layer0_q.npy, layer0_k.npy, layer0_v.npy,
// written to a private temporary directory. Every input is read into a manifest and a
// layer whose arrays have the shapes the manifest gives and finite values, or refused
// with a sparq::Error naming the problem (bad_file, io_error, shape_mismatch,
// non_finite_input, invalid_argument); nothing else may happen.
#pragma once

#include <stdlib.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "sparq/error.hpp"
#include "sparq/tools/eval/trace.hpp"

namespace sparq::fuzz {

inline constexpr std::string_view kTracePartSeparator = "\n--8<--\n";

inline const std::filesystem::path& trace_fuzz_dir() {
  static const std::filesystem::path dir = [] {
    std::string pattern = (std::filesystem::temp_directory_path() / "sparq_trace_fuzz_XXXXXX").string();
    SPARQ_FUZZ_CHECK(mkdtemp(pattern.data()) != nullptr, "cannot create a temporary directory");
    return std::filesystem::path(pattern);
  }();
  return dir;
}

// Returns whether the input was read (rather than refused).
inline bool trace_one(const std::uint8_t* data, std::size_t size) {
  const std::filesystem::path& dir = trace_fuzz_dir();
  for (const auto& entry : std::filesystem::directory_iterator(dir)) std::filesystem::remove_all(entry.path());
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const char* names[] = {"manifest.json", "layer0_q.npy", "layer0_k.npy", "layer0_v.npy"};
  std::size_t at = 0;
  for (const char* name : names) {
    if (at > input.size()) break;
    const std::size_t end = std::min(input.find(kTracePartSeparator, at), input.size());
    std::ofstream(dir / name, std::ios::binary).write(input.data() + at, std::streamsize(end - at));
    at = end + kTracePartSeparator.size();
  }
  try {
    const eval::TraceManifest m = eval::read_trace_manifest(dir);
    SPARQ_FUZZ_CHECK(m.positions >= 1 && m.prefill < m.positions && m.shape.layers >= 1,
                     "accepted a manifest outside its ranges");
    const eval::TraceLayer t = eval::read_trace_layer(dir, m, 0);
    const std::size_t n = m.positions, d = m.shape.head_dim;
    SPARQ_FUZZ_CHECK(
        t.q.size() == n * m.shape.q_heads * d && t.k.size() == n * m.shape.kv_heads * d && t.v.size() == t.k.size(),
        "layer arrays disagree with the manifest");
    for (const auto* a : {&t.q, &t.k, &t.v})
      for (float x : *a) SPARQ_FUZZ_CHECK(std::isfinite(x), "accepted a non-finite value");
    return true;
  } catch (const Error& e) {
    const ErrorCode c = e.code();
    // empty_sequence: a manifest with positions=0 (TraceManifest::validate).
    SPARQ_FUZZ_CHECK(c == ErrorCode::bad_file || c == ErrorCode::io_error || c == ErrorCode::shape_mismatch ||
                         c == ErrorCode::non_finite_input || c == ErrorCode::invalid_argument ||
                         c == ErrorCode::empty_sequence,
                     "refused with %s: %s", std::string(to_string(c)).c_str(), e.what());
    return false;
  }
}

}  // namespace sparq::fuzz
