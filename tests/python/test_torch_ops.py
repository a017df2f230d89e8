"""sparq.torch_ops: the torch.library ops against direct calls of the binding, bit for bit,
under torch.inference_mode(); their Meta kernels; and their errors changing nothing."""
import numpy as np
import pytest
import torch

import sparq
import sparq.torch_ops as ops
from sparq_test_util import cache_state, expect_error

KV, G, D = 2, 2, 16
QH = KV * G


def make_cache(dtype="bf16"):
    return sparq.KVCache(layers=2, kv_heads=KV, head_dim=D, dtype=dtype, block_tokens=8, capacity_tokens=1024)


def test_ops_are_registered():
    assert "sparq::decode_step" in str(torch.ops.sparq.decode_step.default._schema)
    assert "sparq::prefill" in str(torch.ops.sparq.prefill.default._schema)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_prefill_and_decode_steps_equal_direct_calls(dtype):
    torch.manual_seed(0)
    a, b = make_cache(), make_cache()
    seqs_a = [a.add_sequence() for _ in range(3)]
    seqs_b = [b.add_sequence() for _ in range(3)]
    lengths = [5, 9, 1]
    with torch.inference_mode():
        for sa, sb, T in zip(seqs_a, seqs_b, lengths):
            q, k, v = torch.randn(T, QH, D, dtype=dtype), torch.randn(T, KV, D, dtype=dtype), torch.randn(T, KV, D,
                                                                                                         dtype=dtype)
            y = ops.prefill(q, k, v, a, 1, sa)
            b.append(sb, 1, k, v)
            want = sparq.decode_causal(b, 1, sb, q)
            assert y.dtype == dtype and torch.equal(y, want)
        for step in range(4):
            method = sparq.SparQ(2) if step % 2 else sparq.Dense()
            q, k, v = torch.randn(3, QH, D, dtype=dtype), torch.randn(3, KV, D, dtype=dtype), torch.randn(3, KV, D,
                                                                                                         dtype=dtype)
            y = ops.decode_step(q, k, v, a, 1, seqs_a, method)
            for i, s in enumerate(seqs_b):
                b.append(s, 1, k[i], v[i])
            want = sparq.decode(b, 1, method, seqs_b, q)
            assert y.dtype == dtype and torch.equal(y, want), step
    assert [a.length(s, 1) for s in seqs_a] == [x + 4 for x in lengths]


def test_model_layout_attention():
    cache = make_cache("f32")
    s = cache.add_sequence()
    torch.manual_seed(1)
    with torch.inference_mode():
        q, k, v = torch.randn(1, 6, QH, D), torch.randn(1, 6, KV, D), torch.randn(1, 6, KV, D)
        y = ops.attention(q, k, v, cache, 0, [s])
        assert y.shape == (1, 6, QH, D)
        q1, k1, v1 = torch.randn(1, 1, QH, D), torch.randn(1, 1, KV, D), torch.randn(1, 1, KV, D)
        y1 = ops.attention(q1, k1, v1, cache, 0, [s], sparq.SparQ(4, k=100))
        assert y1.shape == (1, 1, QH, D) and cache.length(s) == 7
        expect_error("invalid_argument", lambda: ops.attention(q.expand(2, -1, -1, -1), k.expand(2, -1, -1, -1),
                                                               v.expand(2, -1, -1, -1), cache, 0, [s, s]), "B=2")


def test_meta_kernels_propagate_shapes():
    cache = make_cache()
    q = torch.empty(3, QH, D, device="meta", dtype=torch.bfloat16)
    kv = torch.empty(3, KV, D, device="meta", dtype=torch.bfloat16)
    h = ops.cache_handle(cache)
    # Under inference mode: torch 1.13 has no autograd fallthrough for meta tensors (AutogradMeta).
    with torch.inference_mode():
        y = torch.ops.sparq.decode_step(q, kv, kv, h, 0, [0, 1, 2], "dense", 8.0, -1, -1, -1, -1, "shared", 0.0)
        assert y.device.type == "meta" and y.shape == q.shape and y.dtype == q.dtype
        y = torch.ops.sparq.prefill(q, kv, kv, h, 0, 0, 0.0)
        assert y.device.type == "meta" and y.shape == q.shape


def test_decode_step_errors_append_nothing():
    cache = make_cache()
    seqs = [cache.add_sequence() for _ in range(2)]
    for s in seqs:
        cache.append(s, 0, torch.ones(3, KV, D), torch.ones(3, KV, D))
    before = [cache_state(cache, s) for s in seqs]
    q, k, v = torch.randn(2, QH, D), torch.randn(2, KV, D), torch.randn(2, KV, D)
    bad = k.clone()
    bad[1, 0, 3] = float("inf")
    with torch.inference_mode():
        expect_error("unknown_sequence", lambda: ops.decode_step(q, k, v, cache, 0, [seqs[0], 99]), "99")
        expect_error("non_finite_input", lambda: ops.decode_step(q, bad, v, cache, 0, seqs),
                     "keys[batch row 1, head 0, component 3]")
        expect_error("invalid_argument", lambda: ops.decode_step(q, k, v, cache, 0, [seqs[0], seqs[0]]),
                     "repeats seqs[0]")
        expect_error("invalid_argument", lambda: ops.decode_step(q, k, v, cache, 5, seqs), "layer=5")
        expect_error("shape_mismatch", lambda: ops.decode_step(q, k[:, :1], v[:, :1], cache, 0, seqs), "kv_heads=2")
        expect_error("shape_mismatch", lambda: ops.decode_step(q[:1], k, v, cache, 0, seqs), "must be [B")
        expect_error("invalid_argument", lambda: ops.decode_step(q, k, v, cache, 0, seqs, "sparq"), "method is a str")
        expect_error("invalid_argument", lambda: ops.decode_step(q, k, v, object(), 0, seqs), "sparq.KVCache")
        expect_error("invalid_argument",
                     lambda: torch.ops.sparq.decode_step(q, k, v, 12345, 0, seqs, "dense", 8.0, -1, -1, -1, -1,
                                                         "shared", 0.0), "handle 12345")
        # A prefill that cannot be appended changes nothing either.
        expect_error("shape_mismatch", lambda: ops.prefill(torch.randn(4, QH, D), torch.randn(4, 3, D),
                                                           torch.randn(4, 3, D), cache, 0, seqs[0]), "keys has shape")
    assert [cache_state(cache, s) for s in seqs] == before


def test_handles_do_not_keep_caches_alive():
    import gc
    import weakref

    cache = make_cache()
    h = ops.cache_handle(cache)
    ref = weakref.ref(cache)
    del cache
    gc.collect()
    assert ref() is None
    expect_error("invalid_argument", lambda: ops._cache_of(h), "unknown")
