// `sparq layouts`' reports: a text table, CSV and JSON of one run (layouts_run.hpp).
#include <fmt/core.h>

#include <string>

#include "cli.hpp"
#include "layouts_run.hpp"
#include "options.hpp"

namespace sparq::cli::layouts {

nlohmann::json to_json(const LayoutsOptions& o, const Run& run) {
  nlohmann::json j;
  j["tool"] = "layouts";
  j["config"] = {{"seq_len", run.seq_len},
                 {"q_heads", run.q_heads},
                 {"kv_heads", run.kv_heads},
                 {"head_dim", run.head_dim},
                 {"ratio", o.ratio},
                 {"r", run.params.r},
                 {"k", run.params.k},
                 {"window", run.params.window},
                 {"threads", run.threads},
                 {"repeats", o.repeats},
                 {"working_set_bytes", run.working_set}};
  j["machine"] = {{"cpu_model", run.machine.cpu_model},
                  {"read_gb_per_s_before", run.read_gb_per_s_before},
                  {"read_gb_per_s_after", run.read_gb_per_s_after}};
  auto rows = nlohmann::json::array();
  for (const Result& r : run.results) {
    if (!r.complete()) continue;
    rows.push_back({{"dtype", std::string(to_string(r.dtype))},
                    {"layout", std::string(to_string(r.variant.layout))},
                    {"d_major_type", std::string(to_string(r.variant.d_major_type))},
                    {"variant", variant_name(r.variant)},
                    {"block_tokens", r.block},
                    {"memory_bytes", r.memory.total()},
                    {"k_s_major_bytes", r.memory.k_s_major},
                    {"k_d_major_bytes", r.memory.k_d_major},
                    {"values_bytes", r.memory.values},
                    {"kv_bytes", r.kv_bytes},
                    {"memory_overhead", r.overhead()},
                    {"sparq_seconds", r.sparq_s()},
                    {"dense_seconds", r.dense_s()},
                    {"sparq_bytes", r.sparq_bytes()},
                    {"stage1_bytes", r.phase_bytes(Phase::stage1)},
                    {"topk_bytes", r.phase_bytes(Phase::topk)},
                    {"stage2_bytes", r.phase_bytes(Phase::stage2)},
                    {"model_bytes", r.model_bytes},
                    {"dense_bytes", r.dense_bytes()},
                    {"sparq_gb_per_s", r.sparq_gb_per_s()},
                    {"dense_gb_per_s", r.dense_gb_per_s()},
                    {"sparq_bandwidth_fraction", run.bw_fraction(r.sparq_gb_per_s())},
                    {"dense_bandwidth_fraction", run.bw_fraction(r.dense_gb_per_s())},
                    {"stage1_gb_per_s", r.phase_gb_per_s(Phase::stage1)},
                    {"stage2_gb_per_s", r.phase_gb_per_s(Phase::stage2)},
                    {"speedup_vs_dense", r.speedup()},
                    {"byte_ratio_vs_dense", r.sparq_bytes() ? double(r.dense_bytes()) / double(r.sparq_bytes()) : 0.0},
                    {"repeats", r.sparq_times.size()}});
  }
  j["results"] = rows;
  auto recs = nlohmann::json::array();
  std::string joined;
  for (const Recommendation& rec : run.recommendations) {
    nlohmann::json one = {{"line", rec.line}};
    if (rec.chosen)
      one.update({{"dtype", std::string(to_string(rec.chosen->dtype))},
                  {"layout", std::string(to_string(rec.chosen->variant.layout))},
                  {"d_major_type", std::string(to_string(rec.chosen->variant.d_major_type))},
                  {"block_tokens", rec.chosen->block}});
    recs.push_back(one);
    joined += (joined.empty() ? "" : "\n") + rec.line;
  }
  j["recommendations"] = recs;
  j["recommendation"] = joined;
  j["notes"] = run.notes;
  j["interrupted"] = run.interrupted;
  return j;
}

void print_csv(const Run& run) {
  fmt::print(
      "dtype,layout,d_major_type,block_tokens,memory_bytes,memory_overhead,sparq_ms,dense_ms,stage1_bytes,"
      "stage2_bytes,sparq_bytes,model_bytes,dense_bytes,sparq_gb_per_s,dense_gb_per_s,sparq_bandwidth_fraction,"
      "dense_bandwidth_fraction,stage1_gb_per_s,stage2_gb_per_s,speedup_vs_dense\n");
  for (const Result& r : run.results) {
    if (!r.complete()) continue;
    fmt::print("{},{},{},{},{},{:.4f},{:.6f},{:.6f},{},{},{},{},{},{:.3f},{:.3f},{:.4f},{:.4f},{:.3f},{:.3f},{:.3f}\n",
               to_string(r.dtype), to_string(r.variant.layout), to_string(r.variant.d_major_type), r.block,
               r.memory.total(), r.overhead(), r.sparq_s() * 1e3, r.dense_s() * 1e3, r.phase_bytes(Phase::stage1),
               r.phase_bytes(Phase::stage2), r.sparq_bytes(), r.model_bytes, r.dense_bytes(), r.sparq_gb_per_s(),
               r.dense_gb_per_s(), run.bw_fraction(r.sparq_gb_per_s()), run.bw_fraction(r.dense_gb_per_s()),
               r.phase_gb_per_s(Phase::stage1), r.phase_gb_per_s(Phase::stage2), r.speedup());
  }
}

void print_text(const LayoutsOptions& o, const Run& run) {
  fmt::print("sparq layouts: S={}, {} query / {} KV heads, d={}, SparQ r={} k={} window={}, {} thr, median of {}\n",
             size_label(run.seq_len), run.q_heads, run.kv_heads, run.head_dim, run.params.r, run.params.k,
             run.params.window, run.threads, o.repeats);
  fmt::print("machine: {}; read bandwidth {:.1f} GB/s before the runs, {:.1f} GB/s after ({} thr)\n\n",
             run.machine.cpu_model, run.read_gb_per_s_before, run.read_gb_per_s_after, run.threads);
  fmt::print("{:<5} {:<11} {:>5} {:>10} {:>6}  {:>9} {:>6} {:>5} {:>6}  {:>9} {:>6} {:>5}  {:>7}\n", "dtype", "storage",
             "B", "memory", "extra", "sparq", "GB/s", "%BW", "st2 GB", "dense", "GB/s", "%BW", "speedup");
  for (const Result& r : run.results) {
    if (!r.complete()) continue;
    fmt::print(
        "{:<5} {:<11} {:>5} {:>10} {:>+5.0f}%  {:>6.3f} ms {:>6.1f} {:>4.0f}% {:>6.1f}  {:>6.3f} ms {:>6.1f} {:>4.0f}% "
        " "
        "{:>6.2f}x\n",
        to_string(r.dtype), variant_name(r.variant), r.block, perf::human_bytes(double(r.memory.total())),
        r.overhead() * 100, r.sparq_s() * 1e3, r.sparq_gb_per_s(), run.bw_fraction(r.sparq_gb_per_s()) * 100,
        r.phase_gb_per_s(Phase::stage2), r.dense_s() * 1e3, r.dense_gb_per_s(),
        run.bw_fraction(r.dense_gb_per_s()) * 100, r.speedup());
  }
  fmt::print("\nbytes per call (from the profile)\n{:<5} {:<11} {:>5} {:>11} {:>11} {:>11} {:>7} {:>11} {:>7}\n",
             "dtype", "storage", "B", "stage1", "stage2", "sparq", "model", "dense", "bytes/x");
  for (const Result& r : run.results) {
    if (!r.complete()) continue;
    fmt::print("{:<5} {:<11} {:>5} {:>11} {:>11} {:>11} {:>6.2f}x {:>11} {:>6.2f}x\n", to_string(r.dtype),
               variant_name(r.variant), r.block, perf::human_bytes(double(r.phase_bytes(Phase::stage1))),
               perf::human_bytes(double(r.phase_bytes(Phase::stage2))), perf::human_bytes(double(r.sparq_bytes())),
               r.model_bytes ? double(r.sparq_bytes()) / double(r.model_bytes) : 0.0,
               perf::human_bytes(double(r.dense_bytes())),
               r.sparq_bytes() ? double(r.dense_bytes()) / double(r.sparq_bytes()) : 0.0);
  }
  fmt::print(
      "(memory: one layer, all KV heads; extra: key copies over K+V once; %BW: of the read bandwidth before the "
      "runs; st2 GB: SparQ stage 2's GB/s; model: sparq bytes / DESIGN §1 model for that storage; bytes/x: dense / "
      "sparq bytes)\n");
  for (const std::string& note : run.notes) fmt::print("note: {}\n", note);
  for (const Recommendation& rec : run.recommendations) fmt::print("recommendation: {}\n", rec.line);
}

}  // namespace sparq::cli::layouts
