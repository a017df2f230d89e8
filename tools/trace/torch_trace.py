"""Record a decode trace of a Llama-style PyTorch model, in sparq's trace format
(docs/eval-traces.md), for `sparq eval`: each layer's post-RoPE queries and keys and its
values, at every position of a generation (prompt and decode steps).

Needs only torch and numpy; copy this file next to your script if you like.

    from torch_trace import TraceRecorder
    with TraceRecorder(model, rope="half", rope_theta=500000.0) as rec:   # a Hugging Face Llama
        model.generate(input_ids, max_new_tokens=64, do_sample=False)
    rec.write("trace/", prefill=input_ids.shape[1], source="Llama-3.2-1B, my prompt")
    # then: sparq eval trace/

How it hooks in, for each attention module (found by the projections it owns):
- if the module has a `qkv_hook` attribute (tools/train/model.py's Attention), the model
  hands it the post-RoPE q [B, T, H, hd] and k, v [B, T, KV, hd] itself: exact;
- otherwise forward hooks on its q, k and v projections (`wq`/`q_proj`, `wk`/`k_proj`,
  `wv`/`v_proj`) capture their outputs, and the recorder applies RoPE itself at the
  positions it has counted: `rope="adjacent"` rotates pairs (2i, 2i+1) (Meta's original
  Llama, llama2.c, this project's model), `rope="half"` pairs (i, i + hd/2) (Hugging Face's
  rotate_half); the angle of pair i at position p is p * theta^(-2i/hd), in float64 as
  this project's model computes it. Models that scale RoPE (Llama 3.1's rope_scaling)
  need the qkv_hook route or their own angles (`inv_freq=`).

Positions: one sequence (batch 1); every forward call appends its T tokens, so a prefill
followed by one-token decode steps (any generate loop with a KV cache) is recorded in
order. A trace's `prefill` splits the positions into prompt and decode steps; `sparq eval`
evaluates the decode steps (queries of the prompt are kept too: H2O needs them).
"""
import json
import os

import numpy as np
import torch

Q_NAMES, K_NAMES, V_NAMES = ("wq", "q_proj"), ("wk", "k_proj"), ("wv", "v_proj")


def _child(module, names):
    for n in names:
        if isinstance(getattr(module, n, None), torch.nn.Module):
            return getattr(module, n)
    return None


def attention_modules(model):
    """The modules that own q, k and v projections, in model order (one per layer)."""
    return [m for m in model.modules() if all(_child(m, n) is not None for n in (Q_NAMES, K_NAMES, V_NAMES))]


class TraceRecorder:
    """Records q, k, v of every attention layer of `model` while it runs (a context manager).

    n_heads, n_kv_heads, head_dim: read from the attention modules (n_heads, n_kv_heads,
    head_dim or num_heads, num_key_value_heads) or the model's config when not given.
    rope: "adjacent" or "half" (only used by the projection-hook route); rope_theta its base;
    inv_freq: explicit frequencies [head_dim/2] instead of theta.
    """

    def __init__(self, model, n_heads=None, n_kv_heads=None, head_dim=None, rope="adjacent", rope_theta=10000.0,
                 inv_freq=None, modules=None):
        if rope not in ("adjacent", "half"):
            raise ValueError(f"rope={rope!r}: use 'adjacent' (pairs 2i, 2i+1) or 'half' (pairs i, i + hd/2)")
        self.model, self.rope, self.rope_theta = model, rope, float(rope_theta)
        self.modules = list(modules) if modules is not None else attention_modules(model)
        if not self.modules:
            raise ValueError("no attention module found (one that owns wq/q_proj, wk/k_proj and wv/v_proj)")
        cfg = getattr(model, "cfg", None) or getattr(model, "config", None)
        first = self.modules[0]

        def pick(given, *names):
            if given is not None:
                return int(given)
            for src in (first, cfg):
                for n in names:
                    if src is not None and getattr(src, n, None) is not None:
                        return int(getattr(src, n))
            raise ValueError(f"cannot tell {names[0]}: pass it to TraceRecorder")

        self.n_heads = pick(n_heads, "n_heads", "num_heads", "num_attention_heads")
        self.n_kv_heads = pick(n_kv_heads, "n_kv_heads", "num_key_value_heads", "n_heads", "num_heads")
        self.head_dim = int(head_dim or getattr(first, "head_dim", None) or getattr(cfg, "head_dim", None)
                            or _child(first, Q_NAMES).out_features // self.n_heads)
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads={self.n_heads} is not a multiple of n_kv_heads={self.n_kv_heads}")
        half = self.head_dim // 2
        if inv_freq is None:
            i = torch.arange(0, self.head_dim, 2, dtype=torch.float64)
            inv_freq = self.rope_theta ** (-i / self.head_dim)
        self.inv_freq = torch.as_tensor(inv_freq, dtype=torch.float64).reshape(half)
        self.q = [[] for _ in self.modules]
        self.k = [[] for _ in self.modules]
        self.v = [[] for _ in self.modules]
        self._handles, self._saved_hooks, self._pending = [], [], {}

    # ---- recording ------------------------------------------------------------------------

    def _rotate(self, x, pos0):
        """x: [T, H, hd] float32 -> RoPE at positions pos0.. (float64 angles, float32 math)."""
        T = x.shape[0]
        ang = torch.arange(pos0, pos0 + T, dtype=torch.float64)[:, None] * self.inv_freq[None, :]
        c, s = torch.cos(ang).float()[:, None, :], torch.sin(ang).float()[:, None, :]
        if self.rope == "adjacent":
            xr = x.reshape(T, x.shape[1], -1, 2)
            a, b = xr[..., 0], xr[..., 1]
            return torch.stack((a * c - b * s, a * s + b * c), dim=-1).reshape(x.shape)
        h = self.head_dim // 2
        a, b = x[..., :h], x[..., h:]
        return torch.cat((a * c - b * s, a * s + b * c), dim=-1)

    @staticmethod
    def _rows(t, heads, hd):
        if t.shape[0] != 1:
            raise ValueError(f"batch {t.shape[0]}: a trace records one sequence (batch 1)")
        return t.detach().float().cpu().reshape(-1, heads, hd)

    def _record(self, layer, q, k, v):
        self.q[layer].append(q.numpy().astype(np.float32))
        self.k[layer].append(k.numpy().astype(np.float32))
        self.v[layer].append(v.numpy().astype(np.float32))

    def _exact_hook(self, layer):
        def hook(q, k, v):
            self._record(layer, self._rows(q, self.n_heads, self.head_dim), self._rows(k, self.n_kv_heads, self.head_dim),
                         self._rows(v, self.n_kv_heads, self.head_dim))
        return hook

    def _projection_hook(self, layer, which):
        def hook(_module, _inputs, output):
            got = self._pending.setdefault(layer, {})
            got[which] = output
            if len(got) < 3:
                return
            del self._pending[layer]
            q = self._rows(got["q"], self.n_heads, self.head_dim)
            k = self._rows(got["k"], self.n_kv_heads, self.head_dim)
            v = self._rows(got["v"], self.n_kv_heads, self.head_dim)
            pos0 = sum(len(a) for a in self.q[layer])
            self._record(layer, self._rotate(q, pos0), self._rotate(k, pos0), v)
        return hook

    def __enter__(self):
        for layer, m in enumerate(self.modules):
            if hasattr(m, "qkv_hook"):
                self._saved_hooks.append((m, m.qkv_hook))
                m.qkv_hook = self._exact_hook(layer)
                continue
            for which, names in (("q", Q_NAMES), ("k", K_NAMES), ("v", V_NAMES)):
                self._handles.append(_child(m, names).register_forward_hook(self._projection_hook(layer, which)))
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        for m, old in self._saved_hooks:
            m.qkv_hook = old
        self._handles, self._saved_hooks = [], []
        return False

    # ---- output ---------------------------------------------------------------------------

    @property
    def positions(self):
        return sum(len(a) for a in self.q[0]) if self.q and self.q[0] else 0

    def arrays(self, layer):
        """(q [N, H, hd], k [N, KV, hd], v [N, KV, hd]) of one layer, float32."""
        return tuple(np.concatenate(x[layer]) for x in (self.q, self.k, self.v))

    def write(self, directory, prefill, tokens=None, source="torch_trace.py", scale=None):
        """Writes the trace: the arrays, tokens.npy when given, then manifest.json (last, so
        that a directory without a manifest is an unfinished trace)."""
        n = self.positions
        if not 0 <= prefill < n:
            raise ValueError(f"prefill={prefill} must be in [0, positions={n})")
        os.makedirs(directory, exist_ok=True)
        files = []
        for layer in range(len(self.modules)):
            q, k, v = self.arrays(layer)
            if len(q) != n:
                raise ValueError(f"layer {layer} recorded {len(q)} positions, layer 0 {n}")
            names = {w: f"layer{layer}_{w}.npy" for w in "qkv"}
            for w, a in zip("qkv", (q, k, v)):
                np.save(os.path.join(directory, names[w]), np.ascontiguousarray(a, dtype=np.float32))
            files.append(names)
        manifest = {"format": "sparq-decode-trace", "version": 1, "source": source, "layers": len(self.modules),
                    "q_heads": self.n_heads, "kv_heads": self.n_kv_heads, "head_dim": self.head_dim,
                    "positions": n, "prefill": int(prefill), "causal": True, "dtype": "float32",
                    "scale": float(scale) if scale is not None else 1.0 / float(np.sqrt(self.head_dim)),
                    "rope": {"base": self.rope_theta,
                             "pairs": "adjacent (2i, 2i+1)" if self.rope == "adjacent" else "half (i, i + d/2)",
                             "applied": True},
                    "files": files}
        if tokens is not None:
            np.save(os.path.join(directory, "tokens.npy"), np.asarray(tokens, dtype=np.float32))
            manifest["tokens"] = "tokens.npy"
        with open(os.path.join(directory, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=2)
            f.write("\n")
