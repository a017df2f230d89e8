"""Shared helpers of the Python tests: seeded data, a float64 reference, the CLI."""
import json
import os
import subprocess

import numpy as np

import sparq


def rng(seed):
    return np.random.default_rng(seed)


def kv_data(seed, S, kv_heads, d, dtype=np.float32):
    """Keys and values [S, kv_heads, d]."""
    r = rng(seed)
    return (r.standard_normal((S, kv_heads, d)).astype(dtype), r.standard_normal((S, kv_heads, d)).astype(dtype))


def queries(seed, *shape):
    return rng(seed).standard_normal(shape).astype(np.float32)


def dense_reference(k, v, q, kv_begin=0, n_kv=None, S=None):
    """Dense attention in float64 over the first S positions: k, v [S, kv_heads, d] (the stored
    values), q [q_heads, d] for the call's KV heads kv_begin..kv_begin+n_kv (default: the
    rest). Returns out [q_heads, d] and lse [q_heads]."""
    k, v, q = (np.asarray(x, np.float64) for x in (k, v, q))
    S = k.shape[0] if S is None else S
    n_kv = k.shape[1] - kv_begin if n_kv is None else n_kv
    n_q, d = q.shape
    g = n_q // n_kv
    out, lse = np.zeros((n_q, d)), np.zeros(n_q)
    for h in range(n_q):
        kh = kv_begin + h // g
        s = k[:S, kh] @ q[h] / np.sqrt(d)
        m = s.max()
        p = np.exp(s - m)
        out[h] = p @ v[:S, kh] / p.sum()
        lse[h] = m + np.log(p.sum())
    return out, lse


def bits(a):
    """The bit patterns of a float32/float16 array (for bit-for-bit comparisons)."""
    a = np.ascontiguousarray(a)
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint16)


def cli():
    path = os.environ.get("SPARQ_CLI")
    assert path, "SPARQ_CLI (the sparq binary) is set by ctest"
    return path


def run_cli(*args):
    r = subprocess.run([cli(), *args], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"sparq {' '.join(args)} failed ({r.returncode}): {r.stderr}"
    return json.loads(r.stdout) if "--json" in args else r.stdout


def expect_error(code, fn, *needles):
    """fn() must raise sparq.Error with `code` and every needle in its message."""
    try:
        fn()
    except sparq.Error as e:
        assert e.code == code, f"code {e.code!r}, expected {code!r}: {e}"
        for n in needles:
            assert n in str(e), f"{n!r} not in {str(e)!r}"
        return e
    raise AssertionError(f"no sparq.Error({code}) raised")


def cache_state(cache, seq):
    """What a failed call must not change: lengths, memory, and every stored row."""
    layers = cache.layers
    rows = []
    for layer in range(layers):
        for pos in range(cache.length(seq, layer)):
            for head in range(cache.kv_heads):
                rows.append(bits(cache.read_key(seq, layer, head, pos)).tobytes())
                rows.append(bits(cache.read_value(seq, layer, head, pos)).tobytes())
    return ([cache.length(seq, layer) for layer in range(layers)], cache.memory_usage(), rows)
