// A continuous-batching loop over many sequences, the way a server drives sparq:
// requests arrive over time; each new one is prefilled (its prompt's K/V appended, then
// dense causal attention with decode_causal); every step appends one token to each
// running sequence and decodes all of them in one batched call per layer (SparQ);
// finished sequences are removed, freeing their blocks for the next requests.
//
// There is no model here: keys, values and queries come from a hash of (request, layer,
// position), the same in examples/serving_loop.py, so both print the same checksum of
// every attention output (ctest compares them: the Python binding is bit-identical).
#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdio>
#include <sparq/sparq.hpp>
#include <vector>

namespace {

constexpr std::size_t kLayers = 2, kKvHeads = 2, kQHeads = 8, kDim = 64, kMaxRunning = 4;

// Element i of a deterministic stream: uniform in [-0.5, 0.5), exact in f32.
float hashed(std::uint64_t seed, std::uint64_t i) {
  std::uint32_t u = std::uint32_t(seed * 0x9E3779B1u + i * 0x85EBCA77u);
  u ^= u >> 15;
  u *= 0x2C1B3C6Du;
  u ^= u >> 12;
  return float(u >> 8) * 0x1p-24f - 0.5f;
}

// Rows of one kind (0 keys, 1 values, 2 queries) for tokens [p0, p0 + n) of a request's layer.
std::vector<float> rows(std::uint64_t request, std::uint64_t layer, std::uint64_t p0, std::size_t n, int kind) {
  const std::size_t width = (kind == 2 ? kQHeads : kKvHeads) * kDim;
  std::vector<float> out(n * width);
  for (std::size_t t = 0; t < n; ++t) {
    const std::uint64_t seed = ((request * 8 + layer) * 65536 + p0 + t) * 4 + std::uint64_t(kind);
    for (std::size_t i = 0; i < width; ++i) out[t * width + i] = hashed(seed, i);
  }
  return out;
}

// Order-dependent checksum of every output's bits.
std::uint64_t checksum = 0;
void mix(const std::vector<float>& y) {
  std::uint64_t s = 0;
  for (std::size_t i = 0; i < y.size(); ++i) s += std::uint64_t(std::bit_cast<std::uint32_t>(y[i])) * (i + 1);
  checksum = checksum * 1000003u + s;
}

struct Request {
  std::uint64_t id;
  std::size_t arrival, prompt, generate;
};

struct Running {
  Request req;
  sparq::SeqId seq;
  std::size_t generated = 0;
};

}  // namespace

int main() {
  // 10 requests arriving over the first steps, with different prompt and output lengths.
  std::vector<Request> queue;
  for (std::uint64_t r = 0; r < 10; ++r) queue.push_back({r, r * 3, 40 + 37 * r % 150, 5 + 7 * r % 20});

  sparq::KVCache cache({.layers = kLayers,
                        .kv_heads = kKvHeads,
                        .head_dim = kDim,
                        .dtype = sparq::DType::bf16,
                        .block_tokens = 64,
                        .capacity_tokens = 4096});
  const sparq::SparQ method = sparq::SparQ::for_ratio(4);
  std::vector<Running> running;
  std::size_t next = 0, steps = 0, tokens = 0, max_batch = 0;
  for (std::size_t step = 0; next < queue.size() || !running.empty(); ++step) {
    // Admit what has arrived while there is room: prefill each new request.
    while (next < queue.size() && queue[next].arrival <= step && running.size() < kMaxRunning) {
      const Request& r = queue[next++];
      const sparq::SeqId seq = cache.add_sequence();
      for (std::size_t l = 0; l < kLayers; ++l) {
        cache.append(seq, l, rows(r.id, l, 0, r.prompt, 0), rows(r.id, l, 0, r.prompt, 1), r.prompt);
        const std::vector<float> q = rows(r.id, l, 0, r.prompt, 2);
        std::vector<float> y(q.size());
        sparq::decode_causal(cache, l, seq, q, y, r.prompt);
        mix(y);
      }
      running.push_back({r, seq});
    }
    if (running.empty()) continue;
    // One decode step for every running sequence: append its new token, then one batch per layer.
    const std::size_t B = running.size();
    for (std::size_t l = 0; l < kLayers; ++l) {
      std::vector<std::vector<float>> q(B), y(B, std::vector<float>(kQHeads * kDim));
      std::vector<sparq::DecodeItem> batch(B);
      for (std::size_t b = 0; b < B; ++b) {
        const Running& s = running[b];
        const std::size_t pos = s.req.prompt + s.generated;
        cache.append(s.seq, l, rows(s.req.id, l, pos, 1, 0), rows(s.req.id, l, pos, 1, 1), 1);
        q[b] = rows(s.req.id, l, pos, 1, 2);
        batch[b] = {.seq = s.seq, .q = q[b], .out = y[b]};
      }
      sparq::decode(cache, l, method, batch);
      for (const auto& out : y) mix(out);
    }
    ++steps;
    tokens += B;
    max_batch = std::max(max_batch, B);
    // Retire finished sequences.
    for (std::size_t b = running.size(); b-- > 0;) {
      if (++running[b].generated < running[b].req.generate) continue;
      cache.remove_sequence(running[b].seq);
      running.erase(running.begin() + std::ptrdiff_t(b));
    }
  }
  if (!cache.sequences().empty() || cache.memory_usage().blocks_in_use != 0) {
    std::fprintf(stderr, "the cache still holds sequences after every request finished\n");
    return 1;
  }
  std::printf("served %zu requests: %zu decode steps, %zu tokens, batches of up to %zu\n", queue.size(), steps, tokens,
              max_batch);
  std::printf("checksum %016llx\n", static_cast<unsigned long long>(checksum));
}
