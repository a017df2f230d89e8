"""PyTorch integration: attention over a sparq.KVCache inside a model's forward.

    import sparq, sparq.torch_ops as ops

    with torch.inference_mode():
        y = ops.prefill(q, k, v, cache, layer, seq)             # q [T, H, d], k/v [T, KV, d]
        y = ops.decode_step(q, k, v, cache, layer, seqs, sparq.SparQ(8))  # q [B, H, d], k/v [B, KV, d]

Both append the new keys and values to the cache at `layer` and return the attention output
in q's dtype. They are registered with torch.library as torch.ops.sparq.decode_step and
torch.ops.sparq.prefill (CPU and Meta kernels), so they go through the dispatcher like any
other op. Limits of torch 1.13 (Debian 12), written down in docs/python.md:
- an op's arguments can only be tensors and scalars, so the cache travels as an integer
  handle (cache_handle()) that maps back to the KVCache through a weak registry, and the
  method as its parameters (-1 for "derived");
- kernels are Python functions (torch.library's Python registration); there is no
  torch.compile in 1.13, and no autograd: the ops are for inference (run them under
  torch.inference_mode() or torch.no_grad()).
A failure raises sparq.Error and leaves the cache as it was: prefill makes one append, and
decode_step one KVCache.append_batch for the whole batch (all or nothing).
"""
import weakref

import torch

from . import _sparq
from ._sparq import Dense, KVCache, SparQ

__all__ = ["attention", "cache_handle", "decode_step", "prefill"]

_caches = weakref.WeakValueDictionary()


def _error(code, message):
    e = _sparq.Error(message)
    e.code = code
    return e


def cache_handle(cache):
    """The integer that stands for `cache` in torch.ops.sparq.* calls (valid while it lives)."""
    if not isinstance(cache, KVCache):
        raise _error("invalid_argument", f"cache is a {type(cache).__name__}: must be a sparq.KVCache")
    h = id(cache)
    _caches[h] = cache
    return h


def _cache_of(handle):
    cache = _caches.get(handle)
    if cache is None:
        raise _error("invalid_argument", f"cache handle {handle} is unknown: get one from sparq.torch_ops.cache_handle()")
    return cache


def _method_args(method):
    if method is None or isinstance(method, Dense):
        return ("dense", 8.0, -1, -1, -1, -1, "shared")
    if isinstance(method, SparQ):
        opt = lambda v: -1 if v is None else int(v)  # noqa: E731
        return ("sparq", float(method.ratio), opt(method.r), opt(method.k), opt(method.window),
                opt(method.reallocation), method.gqa)
    raise _error("invalid_argument", f"method is a {type(method).__name__}: must be sparq.Dense() or sparq.SparQ(...)")


def _method_of(name, ratio, r, k, window, reallocation, gqa):
    if name == "dense":
        return Dense()
    if name != "sparq":
        raise _error("invalid_argument", f"method='{name}' is unknown: must be 'dense' or 'sparq'")
    opt = lambda v: None if v < 0 else v  # noqa: E731
    return SparQ(ratio, r=opt(r), k=opt(k), window=opt(window),
                 reallocation=None if reallocation < 0 else bool(reallocation), gqa=gqa)


def _decode_step_cpu(query, key, value, cache, layer, seqs, method, ratio, r, k, window, reallocation, gqa, scale):
    kv = _cache_of(cache)
    m = _method_of(method, ratio, r, k, window, reallocation, gqa)
    if query.dim() != 3 or key.dim() != 3 or key.shape != value.shape or key.shape[0] != query.shape[0]:
        raise _error("shape_mismatch", f"query {list(query.shape)}, key {list(key.shape)}, value {list(value.shape)}:"
                     " must be [B, q_heads, d], [B, kv_heads, d], [B, kv_heads, d]")
    if len(seqs) != query.shape[0]:
        raise _error("shape_mismatch", f"len(seqs)={len(seqs)} but query has batch {query.shape[0]}")
    # One all-or-nothing append for the batch: it checks ids (unknown, repeated), shapes and
    # values, and a failure leaves every sequence as it was.
    kv.append_batch(list(seqs), layer, key, value)
    return _sparq.decode(kv, layer, m, list(seqs), query, scale=scale)


def _decode_step_meta(query, key, value, cache, layer, seqs, method, ratio, r, k, window, reallocation, gqa, scale):
    return torch.empty_like(query)


def _prefill_cpu(query, key, value, cache, layer, seq, scale):
    kv = _cache_of(cache)
    if query.dim() != 3 or key.dim() != 3 or key.shape[0] != query.shape[0]:
        raise _error("shape_mismatch", f"query {list(query.shape)}, key {list(key.shape)}: must be [T, q_heads, d]"
                     " and [T, kv_heads, d]")
    kv.append(seq, layer, key, value)
    return _sparq.decode_causal(kv, layer, seq, query, scale=scale)


def _prefill_meta(query, key, value, cache, layer, seq, scale):
    return torch.empty_like(query)


_lib = torch.library.Library("sparq", "DEF")
_lib.define("decode_step(Tensor query, Tensor key, Tensor value, int cache, int layer, int[] seqs, str method, "
            "float ratio, int r, int k, int window, int reallocation, str gqa, float scale) -> Tensor")
_lib.define("prefill(Tensor query, Tensor key, Tensor value, int cache, int layer, int seq, float scale) -> Tensor")
_lib.impl("decode_step", _decode_step_cpu, "CPU")
_lib.impl("decode_step", _decode_step_meta, "Meta")
_lib.impl("prefill", _prefill_cpu, "CPU")
_lib.impl("prefill", _prefill_meta, "Meta")


def decode_step(query, key, value, cache, layer, seqs, method=None, scale=None):
    """One decode step of a batch: appends each sequence's new key and value at `layer`,
    then attends with `method` (sparq.Dense() when None, or sparq.SparQ(...)).

    query: [B, q_heads, head_dim]; key, value: [B, kv_heads, head_dim]; seqs: B distinct
    sequence ids. Returns [B, q_heads, head_dim] in query's dtype. torch.ops.sparq.decode_step.
    """
    return torch.ops.sparq.decode_step(query, key, value, cache_handle(cache), int(layer), [int(s) for s in seqs],
                                       *_method_args(method), float(scale or 0.0))


def prefill(query, key, value, cache, layer, seq, scale=None):
    """Prefill of one sequence: appends T new keys and values at `layer`, then dense causal
    attention of the T queries (query i sees positions up to its own).

    query: [T, q_heads, head_dim]; key, value: [T, kv_heads, head_dim]. Returns
    [T, q_heads, head_dim] in query's dtype. torch.ops.sparq.prefill.
    """
    return torch.ops.sparq.prefill(query, key, value, cache_handle(cache), int(layer), int(seq), float(scale or 0.0))


def attention(query, key, value, cache, layer, seqs, method=None, scale=None):
    """Attention inside a Llama-style model's forward, in its [B, T, heads, head_dim] layout.

    T == 1: one decode step of B sequences (row b is sequence seqs[b]) with `method`;
    T > 1: a prefill of one sequence (B == 1, seqs[0]) with dense causal attention. Appends
    key and value [B, T, kv_heads, head_dim] at `layer` first. Returns [B, T, q_heads, head_dim].
    """
    if query.dim() != 4 or key.dim() != 4:
        raise _error("shape_mismatch", f"query {list(query.shape)}, key {list(key.shape)}: must be "
                     "[B, T, q_heads, head_dim] and [B, T, kv_heads, head_dim]")
    B, T = query.shape[:2]
    if T == 1:
        return decode_step(query[:, 0], key[:, 0], value[:, 0], cache, layer, seqs, method, scale).unsqueeze(1)
    if B != 1:
        raise _error("invalid_argument", f"a prefill of T={T} tokens covers one sequence: got B={B}")
    return prefill(query[0], key[0], value[0], cache, layer, seqs[0], scale).unsqueeze(0)
