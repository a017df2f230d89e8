"""16-bit appends read in place and KVCache.append_batch: both store exactly what float32
appends of the same values store, in every layout; a failed batch changes no sequence."""
import numpy as np
import pytest
import torch

import sparq
from sparq_test_util import bits, cache_state, expect_error, kv_data

KV, D = 2, 8
CONFIGS = [(layout, dm) for layout in ("both", "s-major", "d-major", "fused") for dm in ("same", "int8")
           if dm == "same" or layout in ("both", "fused")]


def make(dtype, layouts="both", d_major_type="same", capacity=256):
    return sparq.KVCache(layers=2, kv_heads=KV, head_dim=D, dtype=dtype, block_tokens=4, capacity_tokens=capacity,
                         layouts=layouts, d_major_type=d_major_type)


def same_rows(a, sa, b, sb, layer):
    assert a.length(sa, layer) == b.length(sb, layer)
    for pos in range(a.length(sa, layer)):
        for h in range(KV):
            assert np.array_equal(bits(a.read_key(sa, layer, h, pos)), bits(b.read_key(sb, layer, h, pos))), pos
            assert np.array_equal(bits(a.read_value(sa, layer, h, pos)), bits(b.read_value(sb, layer, h, pos))), pos


def sixteen_bit_inputs(seed, n):
    """numpy float16 and torch bfloat16/float16 keys and values [n, KV, D], and their float32 values."""
    k, v = kv_data(seed, n, KV, D)
    out = {"np16": (k.astype(np.float16), v.astype(np.float16)),
           "tbf16": (torch.from_numpy(k).bfloat16(), torch.from_numpy(v).bfloat16()),
           "t16": (torch.from_numpy(k * 300).half(), torch.from_numpy(v).half())}
    wide = {name: tuple(x.float().numpy() if isinstance(x, torch.Tensor) else x.astype(np.float32) for x in kv)
            for name, kv in out.items()}
    return out, wide


@pytest.mark.parametrize("storage", ["f32", "f16", "bf16"])
@pytest.mark.parametrize("layouts,d_major", CONFIGS)
def test_sixteen_bit_appends_match_float32_in_every_layout(storage, layouts, d_major):
    inputs, wide = sixteen_bit_inputs(5, 6)
    for name, (k, v) in inputs.items():
        a, b = make(storage, layouts, d_major), make(storage, layouts, d_major)
        sa, sb = a.add_sequence(), b.add_sequence()
        a.append(sa, 1, k[:3], v[:3])  # a partial block, then across a block boundary
        a.append(sa, 1, k[3:], v[3:])
        b.append(sb, 1, *(x[:3] for x in wide[name]))
        b.append(sb, 1, *(x[3:] for x in wide[name]))
        same_rows(a, sa, b, sb, 1)


def test_same_type_is_stored_bit_for_bit():
    k = torch.randn(3, KV, D).bfloat16()
    cache = make("bf16")
    s = cache.add_sequence()
    cache.append(s, 0, k, k)
    got = np.stack([[cache.read_key(s, 0, h, t) for h in range(KV)] for t in range(3)])
    assert np.array_equal(got.view(np.uint32) >> 16, k.view(torch.int16).numpy().astype(np.uint16))
    assert np.array_equal(got.view(np.uint32) & 0xffff, np.zeros_like(got, np.uint32))


def test_sixteen_bit_errors_change_nothing():
    cache = make("f16")
    s = cache.add_sequence()
    cache.append(s, 0, torch.ones(2, KV, D).bfloat16(), torch.ones(2, KV, D).bfloat16())
    before = cache_state(cache, s)
    big = torch.ones(2, KV, D).bfloat16()
    big[1, 1, 3] = 1e5  # finite in bfloat16, beyond float16 storage
    expect_error("non_finite_input", lambda: cache.append(s, 0, big, big), "keys[token 1, head 1, component 3]",
                 "beyond the range of f16 storage")
    nan = np.ones((2, KV, D), np.float16)
    nan[0, 0, 1] = np.nan
    expect_error("non_finite_input", lambda: cache.append(s, 0, nan, nan), "keys[token 0, head 0, component 1] is NaN")
    assert cache_state(cache, s) == before


@pytest.mark.parametrize("layouts,d_major", CONFIGS)
def test_append_batch_equals_one_append_per_sequence(layouts, d_major):
    a, b = make("bf16", layouts, d_major), make("bf16", layouts, d_major)
    sa, sb = [], []
    for n in (0, 3, 4):
        sa.append(a.add_sequence())
        sb.append(b.add_sequence())
        if n:
            k, v = kv_data(n, n, KV, D)
            a.append(sa[-1], 0, k, v)
            b.append(sb[-1], 0, k, v)
    sa.append(a.fork(sa[1]))  # its first token copies the shared block
    sb.append(b.fork(sb[1]))
    for step in range(3):
        inputs, wide = sixteen_bit_inputs(10 + step, len(sa))
        name = ["np16", "tbf16", "t16"][step]
        a.append_batch(sa, 0, *inputs[name])
        for i, s in enumerate(sb):
            b.append(s, 0, wide[name][0][i], wide[name][1][i])
    k, v = kv_data(20, len(sa), KV, D)
    a.append_batch(sa, 0, k, v)  # float32 too
    for i, s in enumerate(sb):
        b.append(s, 0, k[i], v[i])
    for x, y in zip(sa, sb):
        same_rows(a, x, b, y, 0)
    assert [a.length(s, 0) for s in sa] == [4, 7, 8, 7]


def test_failed_batches_change_no_sequence():
    cache = make("bf16", capacity=8)  # 8 blocks
    seqs = [cache.add_sequence() for _ in range(3)]
    cache.append(seqs[1], 0, *kv_data(1, 3, KV, D))
    cache.append(seqs[2], 0, *kv_data(2, 4, KV, D))
    before = [cache_state(cache, s) for s in seqs]
    k, v = (torch.from_numpy(x).bfloat16() for x in kv_data(3, 3, KV, D))
    bad = k.clone()
    bad[2, 0, 1] = float("inf")
    expect_error("non_finite_input", lambda: cache.append_batch(seqs, 0, bad, v),
                 "keys[batch row 2, head 0, component 1]")
    expect_error("invalid_argument", lambda: cache.append_batch([seqs[0], seqs[1], seqs[0]], 0, k, v),
                 f"seqs[2]={seqs[0]} repeats seqs[0]")
    expect_error("unknown_sequence", lambda: cache.append_batch([seqs[0], 99, seqs[2]], 0, k, v), "sequence 99")
    expect_error("shape_mismatch", lambda: cache.append_batch(seqs[:2], 0, k, v), "must be [len(seqs)=2")
    expect_error("shape_mismatch", lambda: cache.append_batch(seqs, 0, k, v[:, :1]), "values have shape")
    expect_error("invalid_argument", lambda: cache.append_batch(seqs, 2, k, v), "layer=2")
    assert [cache_state(cache, s) for s in seqs] == before
    # Sequence 0 needs a first block and sequence 2 a new one (one per head each) in layer
    # 0: with another sequence holding 2 more blocks, only 2 of the 8 are free.
    other = cache.add_sequence()
    cache.append(other, 1, *kv_data(4, 4, KV, D))
    before = [cache_state(cache, s) for s in seqs]
    expect_error("capacity_exhausted", lambda: cache.append_batch(seqs, 0, k, v), "needs 4 more blocks but only 2")
    assert [cache_state(cache, s) for s in seqs] == before
    cache.remove_sequence(other)
    cache.append_batch(seqs, 0, k, v)
    assert [cache.length(s, 0) for s in seqs] == [1, 4, 5]
