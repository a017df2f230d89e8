#include "soak/soak_worker.hpp"

#include <algorithm>
#include <chrono>
#include <string>

#include "sparq/decode.hpp"
#include "sparq/error.hpp"

namespace sparq::soak {

const char* op_name(Op op) noexcept {
  switch (op) {
    case Op::add:
      return "add";
    case Op::prefill:
      return "prefill";
    case Op::append:
      return "append";
    case Op::decode_dense:
      return "decode_dense";
    case Op::decode_sparq:
      return "decode_sparq";
    case Op::fork:
      return "fork";
    case Op::speculate:
      return "speculate";
    case Op::truncate:
      return "truncate";
    case Op::remove:
      return "remove";
  }
  return "?";
}

namespace {

// Methods a step rotates through: dense, SparQ with shared GQA selection, and the
// paper's per-head selection.
Method method_for(std::uint64_t step) {
  switch (step % 3) {
    case 0:
      return Dense{};
    case 1:
      return SparQ::for_ratio(4);
    default: {
      SparQ m = SparQ::for_ratio(8);
      m.gqa = GqaSelection::per_head;
      return m;
    }
  }
}

}  // namespace

Worker::Worker(Shared& shared, std::size_t index)
    : shared_(shared),
      cfg_(shared.config),
      row_(shared.config.kv_heads * shared.config.head_dim),
      rng_(shared.config.seed * 1000003 + index) {}

template <class F>
bool Worker::timed(Op op, F&& f) {
  const auto start = std::chrono::steady_clock::now();
  bool ok = true;
  try {
    f();
  } catch (const Error& e) {
    ok = false;
    if (e.code() == ErrorCode::capacity_exhausted)
      ++tally_[std::size_t(op)].refused;
    else
      shared_.violation(std::string(op_name(op)) + " failed unexpectedly: " + e.what());
  }
  tally_[std::size_t(op)].latency.add(
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count());
  return ok;
}

void Worker::check_lengths(const Owned& s, const char* after) {
  for (std::size_t l = 0; l < cfg_.layers; ++l) {
    const std::size_t have = shared_.cache.length(s.id, l), want = s.record.length(l);
    if (have != want) {
      shared_.violation("after " + std::string(after) + ": sequence " + std::to_string(s.id) + " layer " +
                        std::to_string(l) + " has " + std::to_string(have) + " tokens, the worker appended " +
                        std::to_string(want));
      return;
    }
  }
}

void Worker::run() {
  while (true) {
    if (shared_.gate.requested()) {
      if (shared_.gate.drain_requested()) remove_all();
      if (shared_.gate.park()) return;
      continue;
    }
    try {
      one_operation();
    } catch (const std::exception& e) {  // sparq::Error is handled by timed(); this is anything else
      shared_.violation(std::string("an operation threw: ") + e.what());
    }
    if (++ops_ % 64 == 0) shared_.sample_memory();
  }
}

void Worker::one_operation() {
  if (seqs_.empty()) return prefill();
  // Weights: forward steps dominate, as in a server; the rest exercise every writer.
  const std::size_t r = pick(100);
  if (r < 45) return step();
  if (r < 57) return seqs_.size() < cfg_.max_sequences_per_thread ? prefill() : step();
  if (r < 67) return seqs_.size() < cfg_.max_sequences_per_thread ? fork() : decode_only();
  if (r < 79) return speculate();
  if (r < 85) return truncate();
  if (r < 92) return remove(pick(seqs_.size()));
  decode_only();
}

void Worker::prefill() {
  SeqId id = 0;
  if (!timed(Op::add, [&] { id = shared_.cache.add_sequence(); })) return;
  Owned s{id, SeqRecord(cfg_.layers, row_)};
  const std::size_t n = 1 + pick(cfg_.max_prefill_tokens);
  const std::size_t per_layer = n * row_, k_off = offset(cfg_.layers * per_layer),
                    v_off = offset(cfg_.layers * per_layer);
  const std::span<const float> data(shared_.data);
  const bool ok = timed(Op::prefill, [&] {
    shared_.cache.append_all_layers(id, data.subspan(k_off, cfg_.layers * per_layer),
                                    data.subspan(v_off, cfg_.layers * per_layer), n);
  });
  if (ok) {
    for (std::size_t l = 0; l < cfg_.layers; ++l) s.record.append(l, k_off + l * per_layer, v_off + l * per_layer, n);
    tokens_ += n * cfg_.layers;
  }
  check_lengths(s, ok ? "a prefill" : "a refused prefill");
  seqs_.push_back(std::move(s));
  if (!ok) {
    remove(seqs_.size() - 1);
    evict_longest();
  }
}

void Worker::step() {
  ++steps_;  // each step decodes with the next method of the rotation
  std::vector<bool> alive(seqs_.size(), true);
  const std::span<const float> data(shared_.data);
  for (std::size_t l = 0; l < cfg_.layers; ++l) {
    // Each layer of the forward pass: the new token's K/V of every sequence, then the
    // batch's attention at this layer.
    std::vector<const Owned*> batch;
    for (std::size_t i = 0; i < seqs_.size(); ++i) {
      if (!alive[i]) continue;
      Owned& s = seqs_[i];
      const std::size_t k_off = offset(row_), v_off = offset(row_);
      const bool ok = timed(
          Op::append, [&] { shared_.cache.append(s.id, l, data.subspan(k_off, row_), data.subspan(v_off, row_), 1); });
      if (ok) {
        s.record.append(l, k_off, v_off, 1);
        ++tokens_;
        batch.push_back(&s);
      } else {
        alive[i] = false;  // preempted: evicted after the step, as a server would
        if (shared_.cache.length(s.id, l) != s.record.length(l))
          shared_.violation("a refused append changed layer " + std::to_string(l) + " of sequence " +
                            std::to_string(s.id));
      }
    }
    if (!batch.empty()) decode_batch(l, batch, false);
  }
  for (std::size_t i = seqs_.size(); i-- > 0;) {
    if (alive[i])
      check_lengths(seqs_[i], "a forward step");
    else
      remove(i);
  }
}

void Worker::decode_batch(std::size_t layer, const std::vector<const Owned*>& batch, bool with_prompt) {
  const Method method = method_for(steps_);
  const Op op = std::holds_alternative<Dense>(method) ? Op::decode_dense : Op::decode_sparq;
  const std::size_t q_floats = cfg_.q_heads * cfg_.head_dim;
  const std::size_t n = batch.size() + (with_prompt ? 1 : 0);
  if (outs_.size() < n) outs_.resize(n);
  std::vector<DecodeItem> items;
  std::vector<std::size_t> q_off;
  for (std::size_t i = 0; i < n; ++i) {
    outs_[i].assign(q_floats, 0.0f);
    q_off.push_back(offset(q_floats));
    const SeqId id = i < batch.size() ? batch[i]->id : *shared_.prompt;
    items.push_back({.seq = id, .q = std::span(shared_.data).subspan(q_off[i], q_floats), .out = outs_[i]});
  }
  if (!timed(op, [&] { decode(shared_.cache, layer, method, items); })) return;
  if (std::uniform_real_distribution<double>(0.0, 1.0)(rng_) >= cfg_.replay_fraction) return;
  const std::size_t i = pick(n);
  const SeqRecord& record = i < batch.size() ? batch[i]->record : *shared_.prompt_record;
  ++replays_;
  (void)replay_matches(
      shared_, record, layer, method, items[i].q, outs_[i],
      std::string(op_name(op)) + " of sequence " + std::to_string(items[i].seq) + " at layer " + std::to_string(layer));
}

void Worker::decode_only() {
  // A batch of the worker's sequences, and the shared prompt that other workers fork
  // and decode at the same time.
  std::vector<const Owned*> batch;
  for (const Owned& s : seqs_)
    if (s.record.length(0) > 0) batch.push_back(&s);
  const bool with_prompt = shared_.prompt.has_value() && pick(2) == 0;
  if (batch.empty() && !with_prompt) return;
  ++steps_;
  decode_batch(pick(cfg_.layers), batch, with_prompt);
}

void Worker::fork() {
  const bool from_prompt = shared_.prompt.has_value() && pick(2) == 0;
  const std::size_t src = pick(seqs_.size());
  const SeqId from = from_prompt ? *shared_.prompt : seqs_[src].id;
  SeqId id = 0;
  if (!timed(Op::fork, [&] { id = shared_.cache.fork(from); })) return;
  seqs_.push_back({id, from_prompt ? *shared_.prompt_record : seqs_[src].record});
  check_lengths(seqs_.back(), "a fork");
}

void Worker::speculate() {
  // A draft of a few tokens on every layer, then the rejected tail rolled back.
  Owned& s = seqs_[pick(seqs_.size())];
  const std::size_t n = 1 + pick(6), per_layer = n * row_;
  const std::size_t k_off = offset(cfg_.layers * per_layer), v_off = offset(cfg_.layers * per_layer);
  const std::span<const float> data(shared_.data);
  const bool ok = timed(Op::speculate, [&] {
    shared_.cache.append_all_layers(s.id, data.subspan(k_off, cfg_.layers * per_layer),
                                    data.subspan(v_off, cfg_.layers * per_layer), n);
  });
  if (!ok) {
    check_lengths(s, "a refused draft");
    return evict_longest();
  }
  for (std::size_t l = 0; l < cfg_.layers; ++l) s.record.append(l, k_off + l * per_layer, v_off + l * per_layer, n);
  tokens_ += n * cfg_.layers;
  const std::size_t rejected = pick(n + 1);
  if (rejected > 0 && timed(Op::truncate, [&] { shared_.cache.truncate(s.id, rejected); })) s.record.truncate(rejected);
  check_lengths(s, "a draft");
}

void Worker::truncate() {
  Owned& s = seqs_[pick(seqs_.size())];
  const std::size_t len = s.record.length(0);
  if (len == 0) return;
  const std::size_t n = 1 + pick(std::min<std::size_t>(len, 32));
  if (timed(Op::truncate, [&] { shared_.cache.truncate(s.id, n); })) s.record.truncate(n);
  check_lengths(s, "a truncate");
}

void Worker::remove(std::size_t i) {
  if (timed(Op::remove, [&] { shared_.cache.remove_sequence(seqs_[i].id); })) {
    seqs_.erase(seqs_.begin() + std::ptrdiff_t(i));
  }
}

void Worker::remove_all() {
  while (!seqs_.empty()) {
    const std::size_t before = seqs_.size();
    remove(seqs_.size() - 1);
    if (seqs_.size() == before) {  // a violation was recorded; drop it from our books anyway
      seqs_.pop_back();
    }
  }
}

void Worker::evict_longest() {
  if (seqs_.empty()) return;
  std::size_t longest = 0;
  for (std::size_t i = 1; i < seqs_.size(); ++i)
    if (seqs_[i].record.length(0) > seqs_[longest].record.length(0)) longest = i;
  remove(longest);
}

}  // namespace sparq::soak
