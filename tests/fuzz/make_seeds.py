#!/usr/bin/env python3
"""Writes the committed seed corpora of tests/fuzz/corpus/ (run from anywhere).

Small valid inputs of each format, plus a few near-misses, so libFuzzer starts from the
parsers' interesting paths instead of from random bytes. No numpy needed.
"""
import json
import os
import random
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def npy(shape, values, descr="<f4", major=1):
    shape_text = "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape_text)
    size_bytes = 2 if major == 1 else 4
    total = 6 + 2 + size_bytes + len(header) + 1
    header += " " * ((64 - total % 64) % 64) + "\n"
    fmt = "<f" if descr == "<f4" else "<d"
    data = b"".join(struct.pack(fmt, v) for v in values)
    length = struct.pack("<H" if major == 1 else "<I", len(header))
    return b"\x93NUMPY" + bytes([major, 0]) + length + header.encode("latin1") + data


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    rng = random.Random(18)
    floats = lambda n: [round(rng.gauss(0, 1), 3) for _ in range(n)]

    # .npy
    write("npy", "f4_2x3_v1.npy", npy((2, 3), floats(6)))
    write("npy", "f8_4_v2.npy", npy((4,), floats(4), "<f8", 2))
    write("npy", "f4_scalar_v3.npy", npy((), floats(1), major=3))
    write("npy", "f4_0x7_v1.npy", npy((0, 7), []))
    write("npy", "truncated.npy", npy((2, 3), floats(6))[:-5])

    # Traces: manifest, then layer 0's q, k, v, separated as trace_target.hpp says.
    sep = b"\n--8<--\n"
    n, qh, kvh, d = 3, 2, 1, 4
    manifest = {"format": "sparq-decode-trace", "version": 1, "dtype": "float32", "layers": 1,
                "q_heads": qh, "kv_heads": kvh, "head_dim": d, "positions": n, "prefill": 1,
                "source": "tests/fuzz/make_seeds.py", "causal": True, "scale": None,
                "rope": {"base": 10000.0, "pairs": "adjacent"}}
    arrays = [npy((n, qh, d), floats(n * qh * d)), npy((n, kvh, d), floats(n * kvh * d)),
              npy((n, kvh, d), floats(n * kvh * d))]
    write("trace", "valid", sep.join([json.dumps(manifest).encode()] + arrays))
    named = dict(manifest, layers=2, files=[{"q": "layer0_q.npy", "k": "layer0_k.npy", "v": "layer0_v.npy"},
                                            {"q": "a.npy", "k": "b.npy", "v": "c.npy"}])
    write("trace", "files_list", sep.join([json.dumps(named).encode()] + arrays))
    write("trace", "manifest_only", json.dumps(manifest).encode())
    write("trace", "wrong_shape", sep.join([json.dumps(dict(manifest, positions=4)).encode()] + arrays))

    # Llama checkpoints (llama2.c layout, lib/model/llama_checkpoint.hpp).
    def checkpoint(dim, hidden, layers, heads, kv_heads, vocab, seq_len, shared):
        hd = dim // heads
        kv = kv_heads * hd
        count = vocab * dim + layers * (dim + dim * dim + 2 * kv * dim + dim * dim + dim + 3 * hidden * dim)
        count += dim + 2 * seq_len * (hd // 2) + (0 if shared else vocab * dim)
        header = struct.pack("<7i", dim, hidden, layers, heads, kv_heads, vocab if shared else -vocab, seq_len)
        return header + b"".join(struct.pack("<f", v) for v in floats(count))

    write("checkpoint", "tiny_shared", checkpoint(8, 16, 1, 2, 1, 5, 4, True))
    write("checkpoint", "tiny_separate", checkpoint(8, 12, 2, 2, 2, 3, 2, False))
    write("checkpoint", "header_only", checkpoint(8, 16, 1, 2, 1, 5, 4, True)[:28])

    # Cache operation sequences (cache_ops_target.hpp): 7 config bytes, then operations.
    for i in range(6):
        write("cache_ops", "random_%d" % i, bytes(rng.randrange(256) for _ in range(64 + 32 * i)))
    # Prefill, fork, append to both (copy-on-write), decode, truncate, check.
    write("cache_ops", "fork_cow", bytes([2, 0, 1, 1, 3, 1, 8,
                                          0, 0, 2, 0, 4, 7, 1, 3, 0, 1, 0, 0, 2, 5, 1, 1, 0,
                                          6, 1, 3, 0, 4, 3, 1, 0, 4, 0, 2, 8]))


if __name__ == "__main__":
    main()
