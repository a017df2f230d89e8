"""Every entry point of the Python module rejects bad input with sparq.Error (code and the
library's message) and changes nothing: the cache's lengths, memory and rows, and outputs."""
import numpy as np
import pytest
import torch

import sparq
from sparq_test_util import cache_state, expect_error, kv_data, queries

KV, D, QH = 2, 8, 4


@pytest.fixture
def filled():
    cache = sparq.KVCache(layers=2, kv_heads=KV, head_dim=D, dtype="f16", block_tokens=4, capacity_tokens=8)
    s = cache.add_sequence()
    k, v = kv_data(1, 3, KV, D)
    cache.append(s, 0, k, v)
    return cache, s


def test_error_type():
    e = expect_error("invalid_argument", lambda: sparq.SparQ(0.5), "ratio=0.5")
    assert isinstance(e, RuntimeError) and isinstance(e, ValueError) and isinstance(e, sparq.Error)


def test_bad_cache_config():
    expect_error("invalid_argument", lambda: sparq.KVCache(head_dim=0), "head_dim")
    expect_error("invalid_argument", lambda: sparq.KVCache(dtype="int8"), "dtype='int8'")
    expect_error("invalid_argument", lambda: sparq.KVCache(layouts="x"), "layouts='x'")
    expect_error("invalid_argument", lambda: sparq.KVCache(placement="far"), "placement='far'")
    with pytest.raises(TypeError):
        sparq.KVCache(2)  # keyword-only


def test_bad_methods():
    expect_error("invalid_argument", lambda: sparq.SparQ(float("nan")), "ratio=nan")
    expect_error("invalid_argument", lambda: sparq.SparQ(r=0), "r=0")
    expect_error("invalid_argument", lambda: sparq.SparQ(k=0), "k=0")
    expect_error("invalid_argument", lambda: sparq.SparQ(gqa="some"), "gqa='some'")
    expect_error("invalid_argument", lambda: sparq.SparQ(r=9).resolve(8, 10), "r=9 exceeds head_dim=8")
    expect_error("invalid_argument", lambda: sparq.force_isa("sse9"), "isa='sse9'")


def test_failed_appends_change_nothing(filled):
    cache, s = filled
    before = cache_state(cache, s)
    k, v = kv_data(2, 20, KV, D)
    cases = [
        ("invalid_argument", lambda: cache.append(s, 2, k[:1], v[:1]), ["layer=2"]),
        ("unknown_sequence", lambda: cache.append(99, 0, k[:1], v[:1]), ["99"]),
        ("shape_mismatch", lambda: cache.append(s, 0, k[:1, :1], v[:1, :1]), ["keys has shape [1, 1, 8]"]),
        ("shape_mismatch", lambda: cache.append(s, 0, k[:2], v[:1]), ["values have shape [1, 2, 8]"]),
        ("shape_mismatch", lambda: cache.append(s, 0, k[0, 0], v[0, 0]), ["keys has shape [8]"]),
        ("invalid_argument", lambda: cache.append(s, 0, k.astype(np.int32), v), ["numpy dtype int32"]),
        ("invalid_argument", lambda: cache.append(s, 0, torch.zeros(1, KV, D, dtype=torch.int64), v[:1]), ["DLPack"]),
        ("invalid_argument", lambda: cache.append(s, 0, None, v), ["keys is None"]),
        ("invalid_argument", lambda: cache.append(s, 0, "abc", v), ["keys has numpy dtype <U3"]),
        ("capacity_exhausted", lambda: cache.append(s, 0, k, v), []),
        ("capacity_exhausted", lambda: cache.append(s, 0, k.astype(np.float16), v.astype(np.float16)), []),
        ("shape_mismatch", lambda: cache.append_all_layers(s, k, v), ["[layers=2, n_tokens"]),
    ]
    bad = k[:2].copy()
    bad[1, 1, 3] = np.inf
    cases.append(("non_finite_input", lambda: cache.append(s, 0, bad, v[:2]), ["keys[token 1, head 1, component 3]"]))
    bad16 = torch.from_numpy(v[:2]).bfloat16()
    bad16[0, 1, 2] = float("nan")
    cases.append(("non_finite_input", lambda: cache.append(s, 1, torch.from_numpy(k[:2]).bfloat16(), bad16),
                  ["values[token 0, head 1, component 2]"]))
    inf16 = k[:1].astype(np.float16)
    inf16[0, 0, 0] = np.inf
    cases.append(("non_finite_input", lambda: cache.append(s, 0, inf16, v[:1].astype(np.float16)), ["keys[token 0, head 0, component 0]"]))
    for code, fn, needles in cases:
        expect_error(code, fn, *needles)
        assert cache_state(cache, s) == before, (code, needles)


def test_failed_sequence_calls(filled):
    cache, s = filled
    before = cache_state(cache, s)
    expect_error("unknown_sequence", lambda: cache.remove_sequence(42), "42")
    expect_error("unknown_sequence", lambda: cache.fork(42), "42")
    expect_error("invalid_argument", lambda: cache.truncate(s, 1), "shortest layer")  # layer 1 is empty
    expect_error("invalid_argument", lambda: cache.length(s, 5), "layer=5")
    expect_error("invalid_argument", lambda: cache.read_key(s, 0, 2, 0), "head=2")
    expect_error("invalid_argument", lambda: cache.read_value(s, 0, 0, 3), "pos=3")
    assert cache_state(cache, s) == before


def test_failed_decodes_write_nothing(filled):
    cache, s = filled
    e = cache.add_sequence()
    q = queries(3, QH, D)
    out = np.full((QH, D), -7.0, np.float32)
    lse = np.full(QH, -7.0, np.float32)
    nan_q = q.copy()
    nan_q[1, 2] = np.nan
    dense = sparq.Dense()
    cases = [
        ("invalid_argument", lambda: sparq.decode(cache, 0, "dense", s, q, out), ["method is a str"]),
        ("invalid_argument", lambda: sparq.decode(cache, 3, dense, s, q, out), ["layer=3"]),
        ("unknown_sequence", lambda: sparq.decode(cache, 0, dense, 77, q, out), ["77"]),
        ("unknown_sequence", lambda: sparq.decode(cache, 0, dense, [s, 77], np.stack([q, q]), np.stack([out, out])),
         ["77"]),
        ("empty_sequence", lambda: sparq.decode(cache, 0, dense, e, q, out), ["no tokens"]),
        ("non_finite_input", lambda: sparq.decode(cache, 0, dense, s, nan_q, out), ["batch[0].q[10]"]),
        ("shape_mismatch", lambda: sparq.decode(cache, 0, dense, s, q[:, :4], out), ["q has shape [4, 4]"]),
        ("shape_mismatch", lambda: sparq.decode(cache, 0, dense, [s], q, out), ["[batch=len(seqs)=1"]),
        ("shape_mismatch", lambda: sparq.decode(cache, 0, dense, s, q[:3], out[:3]), ["multiple of the call's 2"]),
        ("shape_mismatch", lambda: sparq.decode(cache, 0, dense, s, q, out[:2]), ["out has shape [2, 8]"]),
        ("shape_mismatch", lambda: sparq.decode(cache, 0, dense, s, q, out, lse=lse[:3]), ["lse has shape [3]"]),
        ("invalid_argument", lambda: sparq.decode(cache, 0, dense, s, q, out, lse=lse.astype(np.float64)),
         ["lse has numpy dtype float64"]),
        ("invalid_argument", lambda: sparq.decode(cache, 0, dense, s, q, out, selected=()), ["selected must be"]),
        ("invalid_argument", lambda: sparq.decode(cache, 0, dense, s, q, out, kv_head_end=3),
         ["kv_head_end=3 exceeds kv_heads=2"]),
        ("invalid_argument", lambda: sparq.decode(cache, 0, dense, s, q, out, kv_head_begin=2), ["kv_head_begin=2"]),
        ("invalid_argument", lambda: sparq.decode(cache, 0, dense, s, q, out, scale=float("inf")), ["scale"]),
        ("invalid_argument", lambda: sparq.decode(cache, 0, sparq.SparQ(r=9), s, q, out), ["r=9"]),
        ("invalid_argument", lambda: sparq.decode(cache, 0, dense, s, q, np.asfortranarray(out)),
         ["out is not C-contiguous"]),
        ("invalid_argument", lambda: sparq.decode(cache, 0, dense, s, q, torch.zeros(D, QH).t()),
         ["out is not contiguous"]),
        ("invalid_argument", lambda: sparq.decode(cache, 0, dense, s, q, [[0.0] * D] * QH), ["out (a list)"]),
        ("shape_mismatch", lambda: sparq.decode_causal(cache, 0, s, q[None], out), ["out has shape [4, 8]"]),
        ("invalid_argument", lambda: sparq.decode_causal(cache, 0, s, np.stack([q] * 4), np.stack([out] * 4)),
         ["n_new=4"]),
        ("shape_mismatch", lambda: sparq.decode_causal(cache, 0, s, q, out), ["[n_new, q_heads, head_dim=8]"]),
    ]
    ro = out.copy()
    ro.setflags(write=False)
    cases.append(("invalid_argument", lambda: sparq.decode(cache, 0, dense, s, q, ro), ["out is read-only"]))
    before = cache_state(cache, s)
    for code, fn, needles in cases:
        expect_error(code, fn, *needles)
        assert np.all(out == -7.0) and np.all(lse == -7.0), (code, needles)
        assert cache_state(cache, s) == before
