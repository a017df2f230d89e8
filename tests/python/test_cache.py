"""sparq.KVCache from numpy and torch: sequences, appends in every input type, read-back."""
import numpy as np
import pytest
import torch

import sparq
from sparq_test_util import bits, kv_data

KV, D = 2, 16


def make(dtype="f32", **kw):
    return sparq.KVCache(layers=2, kv_heads=KV, head_dim=D, dtype=dtype, block_tokens=4, capacity_tokens=256, **kw)


def test_config_and_sequences():
    cache = make("bf16", layouts="both", placement="local")
    assert cache.config == {"layers": 2, "kv_heads": KV, "head_dim": D, "dtype": "bf16", "block_tokens": 4,
                            "capacity_tokens": 256, "layouts": "both", "d_major_type": "same", "placement": "local"}
    assert (cache.layers, cache.kv_heads, cache.head_dim, cache.dtype) == (2, KV, D, "bf16")
    s = cache.add_sequence()
    k, v = kv_data(1, 7, KV, D)
    cache.append(s, 0, k, v)
    cache.append(s, 1, k[:5], v[:5])
    assert (cache.length(s), cache.length(s, 1)) == (7, 5)
    f = cache.fork(s)
    assert f != s and f in cache and cache.length(f, 0) == 7
    cache.truncate(f, 2)
    assert (cache.length(f, 0), cache.length(f, 1), cache.length(s, 0)) == (5, 3, 7)
    assert sorted(cache.sequences()) == sorted([s, f])
    cache.remove_sequence(s)
    assert s not in cache and f in cache
    u = cache.memory_usage()
    assert u["blocks_in_use"] > 0 and u["total"] == u["k_s_major"] + u["k_d_major"] + u["values"] + u["metadata"]
    assert cache.free_blocks() == u["blocks_capacity"] - u["blocks_in_use"]
    assert "sparq.KVCache(layers=2" in repr(cache)


def test_dtype_spellings():
    for name, want in [("float32", "f32"), (np.float16, "f16"), (torch.bfloat16, "bf16"), ("half", "f16")]:
        assert sparq.KVCache(head_dim=8, dtype=name).dtype == want


def test_one_token_and_all_layers():
    cache = make()
    a, b = cache.add_sequence(), cache.add_sequence()
    k, v = kv_data(2, 3, KV, D)
    for t in range(3):
        cache.append(a, 0, k[t], v[t])  # [kv_heads, head_dim]: one token
    cache.append(b, 0, k, v)
    for t in range(3):
        for h in range(KV):
            assert np.array_equal(cache.read_key(a, 0, h, t), cache.read_key(b, 0, h, t))
            assert np.array_equal(cache.read_value(a, 0, h, t), v[t, h])
    c = cache.add_sequence()
    kk, vv = np.stack([k, 2 * k]), np.stack([v, -v])  # [layers, n, kv, d]
    cache.append_all_layers(c, kk, vv)
    assert np.array_equal(cache.read_key(c, 1, 1, 2), 2 * k[2, 1])


@pytest.mark.parametrize("storage", ["f32", "f16", "bf16"])
def test_every_input_type_stores_the_same(storage):
    """A token appended from numpy f32/f16/f64 or torch f32/f16/bf16 is stored exactly as an
    f32 append of the same (widened) values."""
    k32, v32 = kv_data(3, 9, KV, D)
    inputs = {
        "np32": (k32, v32),
        "np64": (k32.astype(np.float64), v32.astype(np.float64)),
        "np16": (k32.astype(np.float16), v32.astype(np.float16)),
        "t32": (torch.from_numpy(k32), torch.from_numpy(v32)),
        "t16": (torch.from_numpy(k32).half(), torch.from_numpy(v32).half()),
        "tbf16": (torch.from_numpy(k32).bfloat16(), torch.from_numpy(v32).bfloat16()),
        "strided": (np.asfortranarray(k32), v32[::1]),
        "list": (k32.tolist(), v32.tolist()),
    }
    for name, (k, v) in inputs.items():
        cache = make(storage)
        s, ref = cache.add_sequence(), cache.add_sequence()
        cache.append(s, 1, k, v)
        widened_k = (k.float().numpy() if isinstance(k, torch.Tensor) else np.asarray(k, np.float64)).astype(np.float32)
        widened_v = (v.float().numpy() if isinstance(v, torch.Tensor) else np.asarray(v, np.float64)).astype(np.float32)
        cache.append(ref, 1, widened_k, widened_v)
        for t in range(9):
            for h in range(KV):
                assert np.array_equal(bits(cache.read_key(s, 1, h, t)), bits(cache.read_key(ref, 1, h, t))), name
                assert np.array_equal(bits(cache.read_value(s, 1, h, t)), bits(cache.read_value(ref, 1, h, t))), name


def test_torch_inputs_under_inference_mode_and_with_grad():
    cache = make()
    s = cache.add_sequence()
    k, v = (torch.from_numpy(x) for x in kv_data(4, 2, KV, D))
    with torch.inference_mode():
        ki, vi = k.clone(), v.clone()
        cache.append(s, 0, ki, vi)
    kg = k.clone().requires_grad_(True)
    cache.append(s, 0, kg, v)  # inputs are only read: a tensor that requires grad is fine
    strided = k.transpose(0, 1).contiguous().transpose(0, 1)
    assert not strided.is_contiguous()
    cache.append(s, 0, strided, v)  # a non-contiguous view: one copy
    assert cache.length(s) == 3 * 2
    assert np.array_equal(cache.read_key(s, 0, 1, 5), k[1, 1].numpy())
