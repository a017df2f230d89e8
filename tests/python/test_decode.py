"""sparq.decode and decode_causal: against a float64 reference, batches, KV-head ranges,
the optional outputs, every q/out type, and the GIL released while decoding."""
import threading
import time

import numpy as np
import pytest
import torch

import sparq
from sparq_test_util import bits, dense_reference, kv_data, queries

KV, G, D = 2, 3, 32
QH = KV * G


def filled_cache(lengths, dtype="f32", seed=10):
    cache = sparq.KVCache(kv_heads=KV, head_dim=D, dtype=dtype, block_tokens=16, capacity_tokens=4096)
    seqs, data = [], []
    for i, S in enumerate(lengths):
        s = cache.add_sequence()
        k, v = kv_data(seed + i, S, KV, D)
        cache.append(s, 0, k, v)
        seqs.append(s)
        data.append((k, v))
    return cache, seqs, data


def close(a, b, tol=1e-5):
    return np.allclose(np.asarray(a, np.float64), b, rtol=tol, atol=tol)


def test_dense_matches_reference_with_lse_and_alpha():
    cache, (s,), [(k, v)] = filled_cache([37])
    q = queries(1, QH, D)
    lse, alpha = np.empty(QH, np.float32), np.empty(QH, np.float32)
    y = sparq.decode(cache, 0, sparq.Dense(), s, q, lse=lse, alpha=alpha)
    want, want_lse = dense_reference(k, v, q)
    assert y.dtype == np.float32 and y.shape == (QH, D)
    assert close(y, want) and close(lse, want_lse) and np.all(alpha == 1.0)


def test_batch_of_different_lengths_equals_single_calls():
    cache, seqs, data = filled_cache([5, 40, 17, 1])
    q = queries(2, len(seqs), QH, D)
    lse = np.empty((len(seqs), QH), np.float32)
    for method in [sparq.Dense(), sparq.SparQ(4), sparq.SparQ(2, gqa="per-head", reallocation=True)]:
        y = sparq.decode(cache, 0, method, seqs, q, lse=lse)
        for b, s in enumerate(seqs):
            lse1 = np.empty(QH, np.float32)
            y1 = sparq.decode(cache, 0, method, s, q[b], lse=lse1)
            assert np.array_equal(bits(y[b]), bits(y1)) and np.array_equal(bits(lse[b]), bits(lse1)), method
        if isinstance(method, sparq.Dense):
            for b, (k, v) in enumerate(data):
                assert close(y[b], dense_reference(k, v, q[b])[0])


def test_kv_head_range_is_one_ranks_share():
    cache, seqs, _ = filled_cache([23, 9])
    q = queries(3, 2, QH, D)
    for method in [sparq.Dense(), sparq.SparQ(2)]:
        full = sparq.decode(cache, 0, method, seqs, q)
        part = sparq.decode(cache, 0, method, seqs, np.ascontiguousarray(q[:, G:]), kv_head_begin=1, kv_head_end=2)
        assert np.array_equal(bits(part), bits(np.ascontiguousarray(full[:, G:]))), method


def test_sparq_with_k_at_least_s_is_dense_and_selects_everything():
    cache, (s,), [(k, v)] = filled_cache([30])
    q = queries(4, QH, D)
    alpha, selected = np.empty(QH, np.float32), []
    y = sparq.decode(cache, 0, sparq.SparQ(8, k=100), s, q, alpha=alpha, selected=selected)
    assert close(y, dense_reference(k, v, q)[0]) and np.all(alpha == 1.0)
    assert len(selected) == 1 and len(selected[0]) == QH
    assert all(np.array_equal(p, np.arange(30, dtype=np.uint32)) for p in selected[0])


def test_sparq_selection_output():
    cache, seqs, _ = filled_cache([64, 50])
    q = queries(5, 2, QH, D)
    m = sparq.SparQ(4, k=10, window=3)
    alpha, selected = np.empty((2, QH), np.float32), []
    sparq.decode(cache, 0, m, seqs, q, alpha=alpha, selected=selected)
    assert m.resolve(D, 64, G) == {"r": 8, "k": 10, "window": 3, "reallocation": False, "gqa": "shared"}
    for b, S in enumerate([64, 50]):
        for h in range(QH):
            p = selected[b][h]
            assert p.dtype == np.uint32 and len(p) == 10 and np.all(np.diff(p.astype(np.int64)) > 0)
            assert set(range(S - 3, S)) <= set(p.tolist())  # the local window
            if h % G:  # shared GQA selection: one per KV head
                assert np.array_equal(p, selected[b][h - h % G])
    assert np.all((alpha > 0) & (alpha <= 1))


@pytest.mark.parametrize("qtype", [np.float16, torch.float32, torch.float16, torch.bfloat16])
def test_q_and_out_types(qtype):
    """A 16-bit q is widened exactly; a 16-bit out is the f32 result rounded once."""
    cache, seqs, _ = filled_cache([20, 21], "bf16")
    q32 = queries(6, 2, QH, D)
    q = torch.from_numpy(q32).to(qtype) if isinstance(qtype, torch.dtype) else q32.astype(qtype)
    q_widened = q.float().numpy() if isinstance(q, torch.Tensor) else q.astype(np.float32)
    y = sparq.decode(cache, 0, sparq.SparQ(4), seqs, q)
    ref = sparq.decode(cache, 0, sparq.SparQ(4), seqs, q_widened)
    assert type(y) is type(q) and y.dtype == q.dtype and tuple(y.shape) == tuple(q.shape)
    if isinstance(y, torch.Tensor):
        ref_t = torch.from_numpy(ref).to(y.dtype)
        assert torch.equal(y.view(torch.int16 if y.dtype != torch.float32 else torch.int32),
                           ref_t.view(torch.int16 if y.dtype != torch.float32 else torch.int32))
    else:
        assert np.array_equal(bits(y), bits(ref.astype(y.dtype)))


def test_out_written_in_place():
    cache, seqs, _ = filled_cache([12, 13])
    q = torch.from_numpy(queries(7, 2, QH, D))
    out = torch.full((2, QH, D), -7.0)
    ptr = out.data_ptr()
    with torch.inference_mode():
        y = sparq.decode(cache, 0, sparq.Dense(), seqs, q, out)
    assert y is out and out.data_ptr() == ptr and not torch.any(out == -7.0)
    out_np = np.full((2, QH, D), -7.0, np.float32)
    assert sparq.decode(cache, 0, sparq.Dense(), seqs, q.numpy(), out_np) is out_np
    assert np.array_equal(bits(out_np), bits(out.numpy()))


def test_decode_causal_matches_reference():
    cache, (s,), [(k, v)] = filled_cache([19])
    q = queries(8, 4, QH, D)  # the last 4 positions' queries
    profile = sparq.Profile()
    y = sparq.decode_causal(cache, 0, s, q, profile=profile)
    for i in range(4):
        assert close(y[i], dense_reference(k, v, q[i], S=19 - 4 + i + 1)[0])
    assert profile.total["bytes_read"] > 0 and profile.isa == sparq.active_isa()


def test_profile_and_isa():
    cache, (s,), _ = filled_cache([300])
    p = sparq.Profile()
    sparq.decode(cache, 0, sparq.SparQ(8), s, queries(9, QH, D), profile=p)
    assert p.phases["stage1"]["calls"] == 1 and p.phases["stage1"]["bytes_read"] > 0 and p.threads >= 1
    p.reset()
    assert p.total["bytes_read"] == 0
    assert sparq.active_isa() in sparq.compiled_isas() and sparq.cpu_supports("generic")
    before = sparq.active_isa()
    y_auto = sparq.decode(cache, 0, sparq.Dense(), s, queries(9, QH, D))
    sparq.force_isa("generic")
    try:
        assert sparq.active_isa() == "generic"
        y_gen = sparq.decode(cache, 0, sparq.Dense(), s, queries(9, QH, D))
        assert close(y_gen, y_auto)
    finally:
        sparq.force_isa(None)
    assert sparq.active_isa() == before


def test_gil_is_released_while_decoding():
    """Another Python thread keeps running during a long decode call."""
    cache = sparq.KVCache(kv_heads=8, head_dim=128, dtype="f32", capacity_tokens=1 << 16)
    s = cache.add_sequence()
    k = np.ones((1 << 14, 8, 128), np.float32)
    cache.append(s, 0, k, k)
    q = queries(10, 8, 128)
    ticks, stop = [], threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    t = threading.Thread(target=ticker)
    t.start()
    time.sleep(0.02)
    windows = []
    for _ in range(10):
        t0 = time.perf_counter()
        sparq.decode(cache, 0, sparq.Dense(), s, q)
        windows.append((t0, time.perf_counter()))
    stop.set()
    t.join()
    # Ticks strictly inside the calls: with the GIL held none could happen.
    inside = sum(1 for x in ticks for a, b in windows if a < x < b)
    assert inside >= 3, f"{inside} ticks during {sum(b - a for a, b in windows) * 1e3:.1f} ms of decode"
