"""sparq: bandwidth-efficient decode attention (SparQ Attention) on CPUs.

A paged KV cache that keeps keys in both layouts, and dense and SparQ decode kernels that
read it, from numpy arrays or torch tensors (float32, float16, bfloat16) without copies
where the memory layout allows::

    import numpy as np
    import sparq

    cache = sparq.KVCache(layers=1, kv_heads=2, head_dim=64, dtype="bf16")
    seq = cache.add_sequence()
    cache.append(seq, 0, k, v)                  # k, v: [S, kv_heads, head_dim]
    y = sparq.decode(cache, 0, sparq.SparQ(8), seq, q)   # q: [q_heads, head_dim]

Errors raise sparq.Error (a RuntimeError and a ValueError) whose `code` names the kind and
whose message names the argument; nothing is changed when one is raised. `sparq.torch_ops`
(imported on demand, it needs torch) registers the attention as torch.library ops.
"""
from ._sparq import (
    Dense,
    Error,
    KVCache,
    Profile,
    SparQ,
    __version__,
    active_isa,
    compiled_isas,
    cpu_supports,
    decode,
    decode_causal,
    force_isa,
)

__all__ = [
    "Dense",
    "Error",
    "KVCache",
    "Profile",
    "SparQ",
    "__version__",
    "active_isa",
    "compiled_isas",
    "cpu_supports",
    "decode",
    "decode_causal",
    "force_isa",
]
