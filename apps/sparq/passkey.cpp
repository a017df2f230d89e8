// `sparq passkey`: long-context retrieval accuracy of each attention method, on fresh
// prompts in tools/train/tasks.py's format (eval/task_prompts.hpp): passkey retrieval
// (Mohtashami & Jaggi, 2023) over lengths x needle depths x keys, or the repetition task
// (--task copy).
//
// Per prompt: the haystack (the prompt without its question) is prefilled once with
// dense attention; each method continues from its own copy-on-write fork, reading the
// question token by token and then answering greedily, every step with its own
// attention (the methods' steps run as one batch). An answer is correct when the
// greedy bytes equal the answer exactly (" NNNNN" for passkey, the 64-byte passage for
// copy); a method stops at its first wrong byte.
//
// Prompts run key-major (key 0 of every cell, then key 1, ...), so a partial run covers
// every cell. --results FILE keeps one JSON line per (prompt, method): a run resumes
// from it, and the tables cover everything it holds for the requested grid.
#include <fmt/core.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "cli.hpp"
#include "model_cli.hpp"
#include "options.hpp"
#include "passkey_report.hpp"
#include "sparq/tools/eval/task_prompts.hpp"
#include "sparq/tools/model/llama_checkpoint.hpp"

namespace sparq::cli {

namespace {

struct PasskeyOptions {
  ModelRunOptions run;
  std::string task = "passkey";
  std::string heldout, prompts_file, dump_prompts, results;
  std::string lengths = "1k,2k,4k,8k";
  std::string depths = "10,20,30,40,50,60,70,80,90";
  std::int64_t keys = 20;
  std::string key_range;  // "A:B"
  std::uint64_t seed = 7919;
  bool by_depth = false;
};

std::vector<std::size_t> parse_lengths(const std::string& list) {
  std::vector<std::size_t> out;
  std::stringstream s(list);
  std::string e;
  while (std::getline(s, e, ',')) {
    std::size_t mult = 1;
    if (!e.empty() && (e.back() == 'k' || e.back() == 'K')) mult = 1024, e.pop_back();
    try {
      std::size_t used = 0;
      const long long v = std::stoll(e, &used);
      if (used != e.size() || v < 1 || v > (1LL << 24)) throw std::invalid_argument("range");
      out.push_back(std::size_t(v) * mult);
    } catch (const std::exception&) {
      usage_error(fmt::format("--lengths entry '{}' is invalid: give byte counts like 1024 or 1k", e));
    }
  }
  if (out.empty()) usage_error("--lengths is empty");
  return out;
}

std::vector<double> parse_depths(const std::string& list) {
  std::vector<double> out;
  std::stringstream s(list);
  std::string e;
  while (std::getline(s, e, ',')) {
    try {
      std::size_t used = 0;
      const double v = std::stod(e, &used);
      if (used != e.size() || !(v >= 0.0 && v <= 100.0)) throw std::invalid_argument("range");
      out.push_back(v / 100.0);  // correctly rounded: 30 -> the double nearest 0.3, as Python's float("0.3")
    } catch (const std::exception&) {
      usage_error(fmt::format("--depths entry '{}' is invalid: give percentages in [0, 100]", e));
    }
  }
  if (out.empty()) usage_error("--depths is empty");
  return out;
}

std::pair<std::size_t, std::size_t> parse_key_range(const std::string& r, std::size_t keys) {
  if (r.empty()) return {0, keys};
  const std::size_t colon = r.find(':');
  try {
    if (colon == std::string::npos) throw std::invalid_argument("no colon");
    const std::size_t a = std::stoul(r.substr(0, colon)), b = std::stoul(r.substr(colon + 1));
    if (a >= b || b > keys) throw std::invalid_argument("range");
    return {a, b};
  } catch (const std::exception&) {
    usage_error(fmt::format("--key-range '{}' is invalid: give A:B with 0 <= A < B <= --keys={}", r, keys));
  }
}

std::string hms(double s) {
  const long t = std::lround(s);
  return fmt::format("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60);
}

int run(const PasskeyOptions& o) {
  if (o.keys < 1) usage_error(fmt::format("--keys={} is invalid: must be >= 1", o.keys));
  if (o.heldout.empty() == o.prompts_file.empty()) usage_error("give exactly one of --heldout and --prompts");
  const std::vector<std::size_t> lengths = parse_lengths(o.lengths);
  const std::vector<double> depths = o.task == "passkey" ? parse_depths(o.depths) : std::vector<double>{};
  const auto [key_begin, key_end] = parse_key_range(o.key_range, std::size_t(o.keys));

  // The prompt set, and each prompt's index within its (length, depth) cell.
  std::vector<eval::TaskPrompt> prompts;
  std::string source_sha;
  if (!o.heldout.empty()) {
    const std::string text = read_text_file(o.heldout);
    source_sha = model::sha256_hex(std::as_bytes(std::span(text)));
    prompts = o.task == "passkey" ? eval::passkey_prompts(text, lengths, depths, std::size_t(o.keys), o.seed)
                                  : eval::copy_prompts(text, lengths, std::size_t(o.keys), o.seed);
  } else {
    const std::string raw = read_text_file(o.prompts_file);
    source_sha = model::sha256_hex(std::as_bytes(std::span(raw)));
    for (auto& p : read_prompt_lines(o.prompts_file))
      if (p.task == o.task) prompts.push_back(std::move(p));
  }
  if (!o.dump_prompts.empty()) {
    std::ofstream out(o.dump_prompts, std::ios::binary | std::ios::trunc);
    for (const auto& p : prompts) out << prompt_json_line(p);
    if (!out) throw Error(ErrorCode::io_error, fmt::format("{}: cannot write", o.dump_prompts));
    fmt::print(stderr, "wrote {} prompts to {}\n", prompts.size(), o.dump_prompts);
    return kExitOk;
  }
  std::vector<std::size_t> index(prompts.size());
  {
    std::map<std::pair<std::size_t, long>, std::size_t> seen;
    for (std::size_t i = 0; i < prompts.size(); ++i)
      index[i] = seen[{prompts[i].length, depth_key(prompts[i].depth.value_or(-1.0))}]++;
  }
  // Key-major order over the requested lengths and keys.
  std::vector<std::size_t> order;
  for (std::size_t k = key_begin; k < key_end; ++k)
    for (std::size_t i = 0; i < prompts.size(); ++i)
      if (index[i] == k && std::find(lengths.begin(), lengths.end(), prompts[i].length) != lengths.end())
        order.push_back(i);

  LoadedModel loaded = load_model(o.run, false);
  model::LlamaModel& model = *loaded.model;
  const auto methods = parse_methods(o.run, model.config().head_dim());
  model.set_attention_mass(model::needs_attention_mass(methods));
  const RunIdentity id{o.task, loaded.info.sha256, source_sha, o.seed, std::size_t(o.keys)};
  std::map<OutcomeKey, Outcome> results =
      o.results.empty() ? std::map<OutcomeKey, Outcome>{} : read_results(o.results, id);
  std::ofstream log;
  if (!o.results.empty()) {
    log.open(o.results, std::ios::app);
    if (!log) throw Error(ErrorCode::io_error, fmt::format("{}: cannot append to the results file", o.results));
  }
  std::string legend;
  for (const auto& m : methods) legend += (legend.empty() ? "" : " ") + m.name;
  fmt::print(stderr,
             "{}\n{} {} prompts x {} methods ({} results already in {}); each prompt's line has one + (right) or - "
             "(wrong) per method, in this order:\n  {}\n",
             model_summary(o.run, loaded), order.size(), o.task, methods.size(), results.size(),
             o.results.empty() ? "no results file" : o.results, legend);

  const auto t_start = std::chrono::steady_clock::now();
  double prefill_total = 0, decode_total = 0;
  std::size_t done_prompts = 0;
  const std::size_t V = model.config().vocab_size;
  for (std::size_t n = 0; n < order.size(); ++n) {
    const eval::TaskPrompt& p = prompts[order[n]];
    Outcome proto;
    proto.task = p.task;
    proto.length = p.length;
    proto.depth = p.depth.value_or(-1.0);
    proto.index = index[order[n]];
    proto.key = p.key;
    std::vector<std::size_t> todo;
    for (std::size_t m = 0; m < methods.size(); ++m) {
      proto.method = methods[m].name;
      if (!results.contains(key_of(proto))) todo.push_back(m);
    }
    if (todo.empty()) continue;
    const std::vector<int> tokens = bytes_to_tokens(p.prompt), answer = bytes_to_tokens(p.answer);
    const std::size_t split = tokens.size() - p.question_bytes();
    const auto t0 = std::chrono::steady_clock::now();
    const SeqId base = model.add_sequence();
    (void)model.prefill(base, std::span(tokens).first(split));
    const double prefill_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // Each pending method: its fork, its next token, how far its answer got.
    struct Run {
      std::size_t method;
      SeqId seq;
      std::vector<int> out;
      bool active = true;
      model::StepStats stats;
    };
    std::vector<Run> runs;
    for (std::size_t m : todo) runs.push_back({m, model.fork(base), {}, true, {}});
    model.remove_sequence(base);
    const auto t1 = std::chrono::steady_clock::now();
    std::vector<float> logits;
    // Steps: the question bytes, then the answer's bytes as generated.
    for (std::size_t s = split;; ++s) {
      std::vector<model::StepItem> items;
      std::vector<Run*> stepped;
      for (Run& r : runs) {
        if (!r.active) continue;
        const int tok = s < tokens.size() ? tokens[s] : r.out.back();
        items.push_back({r.seq, tok, &methods[r.method].method, &r.stats});
        stepped.push_back(&r);
      }
      if (items.empty()) break;
      model.step(items, logits);
      if (s + 1 < tokens.size()) continue;  // still reading the question
      for (std::size_t i = 0; i < stepped.size(); ++i) {
        Run& r = *stepped[i];
        r.out.push_back(model::argmax(std::span(logits).subspan(i * V, V)));
        const std::size_t a = r.out.size() - 1;
        if (r.out[a] != answer[a] || r.out.size() == answer.size()) r.active = false;
      }
    }
    const double decode_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    prefill_total += prefill_s;
    decode_total += decode_s;
    ++done_prompts;
    std::string line;
    for (Run& r : runs) {
      model.remove_sequence(r.seq);
      Outcome out = proto;
      out.method = methods[r.method].name;
      out.output = tokens_to_text(r.out);
      out.matched = 0;
      while (out.matched < r.out.size() && r.out[out.matched] == answer[out.matched]) ++out.matched;
      out.correct = out.matched == answer.size();
      out.bytes_per_step = r.stats.steps ? r.stats.bytes / double(r.stats.steps) : 0.0;
      results[key_of(out)] = out;
      if (log.is_open()) log << outcome_json(out, id).dump() << "\n";
      line += out.correct ? '+' : '-';
    }
    if (log.is_open()) log.flush();
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    const double eta = elapsed / double(n + 1) * double(order.size() - n - 1);
    fmt::print(stderr, "[{}/{}] len {} {}#{}: prefill {:.1f} s, decode {:.1f} s {} elapsed {}, ETA {}\n", n + 1,
               order.size(), p.length, p.depth ? fmt::format("depth {:.0f}% ", 100.0 * *p.depth) : "", index[order[n]],
               prefill_s, decode_s, line, hms(elapsed), hms(eta));
  }

  ReportSpec spec{lengths, depths, {}, o.by_depth};
  for (const auto& m : methods) spec.methods.push_back(m.name);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  if (o.run.json) {
    nlohmann::ordered_json j;
    j["task"] = o.task;
    j["model"] = model_json(o.run, loaded);
    j["source"] = o.heldout.empty() ? o.prompts_file : o.heldout;
    j["source_sha256"] = source_sha;
    j["seed"] = o.seed;
    j["lengths"] = lengths;
    j["depths"] = depths;
    j["keys_per_cell"] = o.keys;
    j["key_range"] = {key_begin, key_end};
    j["prompts_run"] = done_prompts;
    j["prefill_seconds"] = prefill_total;
    j["decode_seconds"] = decode_total;
    j["wall_seconds"] = wall;
    j["results"] = json_report(results, spec);
    fmt::print("{}\n", j.dump(2));
  } else {
    fmt::print("{} accuracy (% exact match), keys {}..{} of {} per cell, seed {}:\n\n{}", o.task, key_begin,
               key_end - 1, o.keys, o.seed, markdown_report(results, spec));
    fmt::print("\n{} prompts run here: prefill {:.0f} s, decode {:.0f} s, wall {}\n", done_prompts, prefill_total,
               decode_total, hms(wall));
  }
  return kExitOk;
}

Action setup(CLI::App& cmd) {
  auto o = std::make_shared<PasskeyOptions>();
  add_model_run_options(cmd, o->run);
  o->run.methods = "dense,sparq";
  cmd.add_option("--task", o->task, "passkey, or copy (the repetition task: repeat a 64-byte passage)")
      ->check(CLI::IsMember({"passkey", "copy"}))
      ->capture_default_str();
  cmd.add_option("--heldout", o->heldout, "Held-out text the filler comes from (build_corpus.py's heldout.txt)");
  cmd.add_option("--prompts", o->prompts_file, "Read the prompts from tasks.py's JSON lines instead");
  cmd.add_option("--lengths", o->lengths, "Prompt + answer lengths in bytes (1k = 1024)")->capture_default_str();
  cmd.add_option("--depths", o->depths, "Needle depths in percent of the filler")->capture_default_str();
  cmd.add_option("--keys", o->keys, "Prompts per (length, depth) cell")
      ->transform(integer_in(1, 1 << 20))
      ->capture_default_str();
  cmd.add_option("--key-range", o->key_range, "Run only keys A..B-1 of each cell (A:B; the prompts stay the same)");
  cmd.add_option("--seed", o->seed, "Seed of the prompts (keys and filler; training used others)")
      ->capture_default_str();
  cmd.add_option("--results", o->results, "JSON-lines file of per-prompt results: appended to, and resumed from");
  cmd.add_option("--dump-prompts", o->dump_prompts, "Write the prompts (tasks.py's JSON lines) to FILE and exit");
  cmd.add_flag("--by-depth", o->by_depth, "Add a depth x length table per method");
  return [o] { return run(*o); };
}

}  // namespace

Subcommand passkey_subcommand() {
  return {"passkey", "Passkey retrieval (or repetition) accuracy of each attention method on fresh prompts", &setup};
}

}  // namespace sparq::cli
