"""A continuous-batching loop over many sequences, the way a server drives sparq from Python:
requests arrive over time; each new one is prefilled (its prompt's K/V appended, then dense
causal attention with decode_causal); every step appends one token to each running sequence
and decodes all of them in one batched call per layer (SparQ); finished sequences are
removed, freeing their blocks for the next requests.

There is no model here: keys, values and queries come from a hash of (request, layer,
position), the same as in examples/serving_loop.cpp, so both print the same checksum of
every attention output (ctest compares them: the Python binding is bit-identical).

Run: PYTHONPATH=build/python /usr/bin/python3 examples/serving_loop.py
"""
import numpy as np

import sparq

LAYERS, KV_HEADS, Q_HEADS, DIM, MAX_RUNNING = 2, 2, 8, 64, 4
M32 = np.uint64(0xFFFFFFFF)


def hashed(seeds, width):
    """[len(seeds), width] floats uniform in [-0.5, 0.5), exact in float32 (as in the C++)."""
    c = np.uint64  # numpy mixes uint64 only with uint64 constants
    u = (seeds[:, None] * c(0x9E3779B1) + np.arange(width, dtype=c)[None, :] * c(0x85EBCA77)) & M32
    u ^= u >> c(15)
    u = (u * c(0x2C1B3C6D)) & M32
    u ^= u >> c(12)
    return (u >> c(8)).astype(np.float32) * np.float32(2.0**-24) - np.float32(0.5)


def rows(request, layer, p0, n, kind):
    """Keys (kind 0), values (1) or queries (2) of tokens [p0, p0 + n): [n, heads, DIM]."""
    heads = Q_HEADS if kind == 2 else KV_HEADS
    pos = np.arange(p0, p0 + n, dtype=np.uint64)
    c = np.uint64
    seeds = ((c(request) * c(8) + c(layer)) * c(65536) + pos) * c(4) + c(kind)
    return hashed(seeds, heads * DIM).reshape(n, heads, DIM)


checksum = 0


def mix(y):
    """Order-dependent checksum of every output's bits (as in the C++)."""
    global checksum
    b = np.ascontiguousarray(y, np.float32).reshape(-1).view(np.uint32).astype(np.uint64)
    s = int((b * np.arange(1, b.size + 1, dtype=np.uint64)).sum(dtype=np.uint64))
    checksum = (checksum * 1000003 + s) & 0xFFFFFFFFFFFFFFFF


def main():
    # 10 requests arriving over the first steps, with different prompt and output lengths.
    queue = [dict(id=r, arrival=3 * r, prompt=40 + (37 * r) % 150, generate=5 + (7 * r) % 20) for r in range(10)]
    cache = sparq.KVCache(layers=LAYERS, kv_heads=KV_HEADS, head_dim=DIM, dtype="bf16", block_tokens=64,
                          capacity_tokens=4096)
    method = sparq.SparQ(4)
    running, nxt, steps, tokens, max_batch, step = [], 0, 0, 0, 0, 0
    while nxt < len(queue) or running:
        # Admit what has arrived while there is room: prefill each new request.
        while nxt < len(queue) and queue[nxt]["arrival"] <= step and len(running) < MAX_RUNNING:
            r = queue[nxt]
            nxt += 1
            seq = cache.add_sequence()
            for layer in range(LAYERS):
                cache.append(seq, layer, rows(r["id"], layer, 0, r["prompt"], 0), rows(r["id"], layer, 0, r["prompt"], 1))
                mix(sparq.decode_causal(cache, layer, seq, rows(r["id"], layer, 0, r["prompt"], 2)))
            running.append(dict(req=r, seq=seq, generated=0))
        step += 1
        if not running:
            continue
        # One decode step for every running sequence: append its new token, then one batch per layer.
        seqs = [s["seq"] for s in running]
        for layer in range(LAYERS):
            q = np.empty((len(running), Q_HEADS, DIM), np.float32)
            for b, s in enumerate(running):
                pos = s["req"]["prompt"] + s["generated"]
                cache.append(s["seq"], layer, rows(s["req"]["id"], layer, pos, 1, 0), rows(s["req"]["id"], layer, pos, 1, 1))
                q[b] = rows(s["req"]["id"], layer, pos, 1, 2)[0]
            for y in sparq.decode(cache, layer, method, seqs, q):
                mix(y)
        steps += 1
        tokens += len(running)
        max_batch = max(max_batch, len(running))
        # Retire finished sequences.
        for s in list(running):
            s["generated"] += 1
            if s["generated"] == s["req"]["generate"]:
                cache.remove_sequence(s["seq"])
                running.remove(s)
    assert not cache.sequences() and cache.memory_usage()["blocks_in_use"] == 0
    print(f"served {len(queue)} requests: {steps} decode steps, {tokens} tokens, batches of up to {max_batch}")
    print(f"checksum {checksum:016x}")


if __name__ == "__main__":
    main()
