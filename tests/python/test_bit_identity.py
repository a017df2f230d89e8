"""The Python binding gives bit for bit what the C++ library gives: `sparq attend` (the CLI,
C++ through the public API) and sparq.decode on the same K, V and Q, for dense and SparQ
variants, every storage type, and inputs from numpy or torch bfloat16 tensors."""
import json
import os
import tempfile

import numpy as np
import pytest
import torch

import sparq
from sparq_test_util import bits, kv_data, queries, run_cli

KV, G, D, S = 2, 4, 64, 333

METHODS = {
    "dense": (["--method", "dense"], sparq.Dense()),
    "sparq4": (["--method", "sparq", "--ratio", "4"], sparq.SparQ(4)),
    "sparq-per-head-realloc": (["--method", "sparq", "--ratio", "2", "--gqa", "per-head", "--reallocation", "on"],
                               sparq.SparQ(2, gqa="per-head", reallocation=True)),
    "sparq-k-window": (["--method", "sparq", "--r", "16", "--k", "40", "--window", "7"],
                       sparq.SparQ(8, r=16, k=40, window=7)),
}


def attend(tmp, q, k, v, dtype, args):
    """Runs `sparq attend` on q [QH, d] and k, v [S, KV, d]; returns Y, alpha, lse."""
    paths = {n: os.path.join(tmp, n + ".npy") for n in ("q", "k", "v", "y")}
    np.save(paths["q"], q)
    np.save(paths["k"], np.ascontiguousarray(k.transpose(1, 0, 2)))  # the CLI takes [kv_heads, S, d]
    np.save(paths["v"], np.ascontiguousarray(v.transpose(1, 0, 2)))
    j = run_cli("attend", "--queries", paths["q"], "--keys", paths["k"], "--values", paths["v"], "--out", paths["y"],
                "--dtype", dtype, "--json", *args)
    return np.load(paths["y"]), np.array(j["alpha"], np.float32), np.array(j["lse"], np.float32)


@pytest.mark.parametrize("dtype", ["f32", "f16", "bf16"])
@pytest.mark.parametrize("name", list(METHODS))
def test_python_equals_cli(dtype, name):
    args, method = METHODS[name]
    k, v = kv_data(20, S, KV, D)
    q = queries(21, KV * G, D)
    with tempfile.TemporaryDirectory() as tmp:
        y_cli, alpha_cli, lse_cli = attend(tmp, q, k, v, dtype, args)
    cache = sparq.KVCache(kv_heads=KV, head_dim=D, dtype=dtype, block_tokens=256, capacity_tokens=512)
    s = cache.add_sequence()
    cache.append(s, 0, k, v)
    alpha, lse = np.empty(KV * G, np.float32), np.empty(KV * G, np.float32)
    y = sparq.decode(cache, 0, method, s, q, alpha=alpha, lse=lse)
    assert np.array_equal(bits(y), bits(y_cli)), f"max |diff| {np.abs(y - y_cli).max()}"
    assert np.array_equal(bits(alpha), bits(alpha_cli)) and np.array_equal(bits(lse), bits(lse_cli))


def test_torch_bf16_inputs_equal_cli():
    """K, V and Q as torch bfloat16 tensors (a model's activations) into a bf16 cache: the CLI
    gets the same values as f32 (exact), so the stored cache and the outputs are identical."""
    k32, v32 = kv_data(22, S, KV, D)
    k, v = torch.from_numpy(k32).bfloat16(), torch.from_numpy(v32).bfloat16()
    q = torch.from_numpy(queries(23, KV * G, D)).bfloat16()
    with tempfile.TemporaryDirectory() as tmp:
        y_cli, _, _ = attend(tmp, q.float().numpy(), k.float().numpy(), v.float().numpy(), "bf16",
                             METHODS["sparq4"][0])
    cache = sparq.KVCache(kv_heads=KV, head_dim=D, dtype="bf16", capacity_tokens=512)
    s = cache.add_sequence()
    with torch.inference_mode():
        cache.append(s, 0, k, v)
        out = torch.empty(KV * G, D)  # float32 out for a bfloat16 q
        sparq.decode(cache, 0, sparq.SparQ(4), s, q, out)
    assert np.array_equal(bits(out.numpy()), bits(y_cli))
