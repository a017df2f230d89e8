// `sparq passkey`'s results: one record per (prompt, method), kept in a JSON-lines file
// so that a long grid can be interrupted and resumed, and the tables built from them.
#pragma once

#include <cstddef>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "sparq/tools/eval/task_prompts.hpp"

namespace sparq::cli {

// What makes records comparable: a results file holds one run's records only.
struct RunIdentity {
  std::string task, model_sha256, source_sha256;  // source: held-out text or prompts file
  std::uint64_t seed = 0;
  std::size_t keys = 0;  // prompts per cell the set was generated with
};

struct Outcome {
  std::string task;
  std::size_t length = 0;
  double depth = -1;      // -1 for tasks without one
  std::size_t index = 0;  // the prompt's index within its (length, depth) cell
  std::string key;        // passkey: the digits
  std::string method;
  bool correct = false;
  std::string output;         // what the method generated (up to and including the first wrong byte)
  std::size_t matched = 0;    // answer bytes right before the first wrong one
  double bytes_per_step = 0;  // K/V bytes its attention read per decode step, all layers (0: not recorded)
};

// (length, depth, index, method): the identity of a record within a run.
using OutcomeKey = std::tuple<std::size_t, long, std::size_t, std::string>;
[[nodiscard]] OutcomeKey key_of(const Outcome& o);
[[nodiscard]] long depth_key(double depth);  // depth in 1/10000 (-1 for none)

[[nodiscard]] nlohmann::ordered_json outcome_json(const Outcome& o, const RunIdentity& id);
// Reads a results file (missing: empty). Throws sparq::Error(invalid_argument) when it
// holds another run's records, bad_file when a line is not a record.
[[nodiscard]] std::map<OutcomeKey, Outcome> read_results(const std::string& path, const RunIdentity& id);

struct ReportSpec {
  std::vector<std::size_t> lengths;
  std::vector<double> depths;  // empty for tasks without depths
  std::vector<std::string> methods;
  bool by_depth = false;
};

// Markdown tables: accuracy by method kind and ratio (over all lengths, then per length),
// the measured transfer (dense bytes / method bytes per decode step, from the records that
// carry bytes), accuracy by method and length, and by depth with by_depth.
[[nodiscard]] std::string markdown_report(const std::map<OutcomeKey, Outcome>& results, const ReportSpec& spec);
// {"by_method": [{method, total, correct, accuracy, by_length: {...}, by_cell: [...]}]}
[[nodiscard]] nlohmann::ordered_json json_report(const std::map<OutcomeKey, Outcome>& results, const ReportSpec& spec);

// tasks.py's JSON-lines prompt format: {"task", "length", "depth", "key", "prompt", "answer"}.
[[nodiscard]] std::string prompt_json_line(const eval::TaskPrompt& p);
[[nodiscard]] std::vector<eval::TaskPrompt> read_prompt_lines(const std::string& path);

}  // namespace sparq::cli
