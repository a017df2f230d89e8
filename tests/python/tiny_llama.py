"""A minimal Llama-style model with the conventions of tools/train/model.py (RMSNorm eps
1e-5, RoPE on adjacent pairs, GQA head h -> KV head h // g) but without its qkv_hook: the
trace test (test_torch_trace.py) uses it for a model that only exposes its projections, the
route a third-party model takes. Plus a writer of SPQLM v2 (f16/bf16, with the SHA-256
sidecar) checkpoints (include/sparq/tools/model/llama_checkpoint.hpp) so `sparq generate`
runs the same weights. The generation test uses tools/train/model.py and its own
llama2.c f32 writer."""
import math
import struct
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class ModelConfig:
    dim: int = 64
    hidden_dim: int = 96
    n_layers: int = 2
    n_heads: int = 4
    n_kv_heads: int = 2
    vocab_size: int = 256
    seq_len: int = 256
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5

    @property
    def head_dim(self):
        return self.dim // self.n_heads

    @property
    def kv_dim(self):
        return self.n_kv_heads * self.head_dim


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * self.weight.float()).type_as(x)


def rope_cos_sin(positions, head_dim, theta):
    i = torch.arange(0, head_dim, 2, dtype=torch.float64)
    ang = positions.to(torch.float64)[:, None] * (theta ** (-i / head_dim))[None, :]
    return torch.cos(ang).float(), torch.sin(ang).float()


def apply_rope(x, cos, sin):
    """x: [B, T, H, hd]; rotates the adjacent pairs (x[2i], x[2i+1])."""
    xf = x.float().reshape(*x.shape[:-1], -1, 2)
    x0, x1 = xf[..., 0], xf[..., 1]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).reshape(x.shape).type_as(x)


def _attend_fallback(q, k, v, q_pos0):
    """Masked softmax attention in float32 (torch 1.13 has no scaled_dot_product_attention)."""
    s = torch.matmul(q.float(), k.float().transpose(-1, -2)) / math.sqrt(q.shape[-1])
    qpos = torch.arange(q.shape[2]) + q_pos0
    s = s.masked_fill(torch.arange(k.shape[2])[None, :] > qpos[:, None], float("-inf"))
    return torch.matmul(torch.softmax(s, dim=-1), v.float()).type_as(q)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        self.wq = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.wk = nn.Linear(cfg.dim, cfg.kv_dim, bias=False)
        self.wv = nn.Linear(cfg.dim, cfg.kv_dim, bias=False)
        self.wo = nn.Linear(cfg.dim, cfg.dim, bias=False)

    def forward(self, x, cos, sin, start_pos=0, cache=None):
        B, T, _ = x.shape
        q = self.wq(x).view(B, T, self.n_heads, self.head_dim)
        k = self.wk(x).view(B, T, self.n_kv_heads, self.head_dim)
        v = self.wv(x).view(B, T, self.n_kv_heads, self.head_dim)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            if "k" in cache:
                k = torch.cat((cache["k"], k), dim=1)
                v = torch.cat((cache["v"], v), dim=1)
            cache["k"], cache["v"] = k, v
        g = self.n_heads // self.n_kv_heads
        q = q.transpose(1, 2)
        k = k.transpose(1, 2).repeat_interleave(g, dim=1)
        v = v.transpose(1, 2).repeat_interleave(g, dim=1)
        y = _attend_fallback(q, k, v, q_pos0=k.shape[2] - T)
        return self.wo(y.transpose(1, 2).reshape(B, T, self.n_heads * self.head_dim))


class FeedForward(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.w1 = nn.Linear(cfg.dim, cfg.hidden_dim, bias=False)
        self.w2 = nn.Linear(cfg.hidden_dim, cfg.dim, bias=False)
        self.w3 = nn.Linear(cfg.dim, cfg.hidden_dim, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.attn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attn = Attention(cfg)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.ffn = FeedForward(cfg)

    def forward(self, x, cos, sin, start_pos=0, cache=None):
        x = x + self.attn(self.attn_norm(x), cos, sin, start_pos, cache)
        return x + self.ffn(self.ffn_norm(x))


class Transformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.output = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)

    def forward(self, tokens, start_pos=0, caches=None):
        B, T = tokens.shape
        cos, sin = rope_cos_sin(torch.arange(start_pos, start_pos + T), self.cfg.head_dim, self.cfg.rope_theta)
        h = self.tok_embeddings(tokens)
        for i, layer in enumerate(self.layers):
            h = layer(h, cos, sin, start_pos, None if caches is None else caches[i])
        return self.output(self.norm(h))


def random_model(cfg, seed, std=0.08):
    """Weights drawn from a seeded normal distribution; norms near 1."""
    torch.manual_seed(seed)
    model = Transformer(cfg)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.normal_(0.0, std)
    return model.eval()


def round_weights(model, dtype=torch.bfloat16):
    """Rounds every parameter to `dtype` (kept in float32): the weights a 16-bit file holds."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(dtype).float())
    return model


SPQLM_HEADER = struct.Struct("<8sII7i2f")


def write_spqlm(model, path, dtype="bf16"):
    """The model as an SPQLM version 2 checkpoint (tools/train/export.py's format) and its
    sidecar path.sha256."""
    import hashlib
    c = model.cfg
    code, tdtype = {"f16": (1, torch.float16), "bf16": (2, torch.bfloat16)}[dtype]
    blocks = list(model.layers)
    tensors = [model.tok_embeddings.weight]
    for get in (lambda b: b.attn_norm.weight, lambda b: b.attn.wq.weight, lambda b: b.attn.wk.weight,
                lambda b: b.attn.wv.weight, lambda b: b.attn.wo.weight, lambda b: b.ffn_norm.weight,
                lambda b: b.ffn.w1.weight, lambda b: b.ffn.w2.weight, lambda b: b.ffn.w3.weight):
        tensors += [get(b) for b in blocks]
    tensors += [model.norm.weight, model.output.weight]
    with open(path, "wb") as f:
        f.write(SPQLM_HEADER.pack(b"SPQLM\0\0\0", 2, code, c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads,
                                  c.vocab_size, c.seq_len, c.rope_theta, c.norm_eps))
        for t in tensors:
            f.write(t.detach().float().contiguous().to(tdtype).view(torch.int16).numpy().tobytes())
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    with open(path + ".sha256", "w") as f:
        f.write(f"{digest}  {path.rsplit('/', 1)[-1]}\n")
