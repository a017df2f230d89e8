"""The long-context byte-level Llama-style decoder (issue 19), in PyTorch.

Architecture: token embedding (vocab 256 = bytes) -> n_layers x [RMSNorm -> GQA attention
with RoPE -> residual, RMSNorm -> SwiGLU MLP -> residual] -> final RMSNorm -> untied
classifier. No biases. RMSNorm is x / sqrt(mean(x^2) + eps) * w. RoPE rotates ADJACENT
pairs (2i, 2i+1) by pos * theta^(-2i/head_dim) (llama2.c's convention, which sparq's C++
runner uses). Query head h reads KV head h // (n_heads / n_kv_heads).

Runs on Debian's torch 1.13 (CPU; plain masked softmax, chunked over queries) and on
torch 2.x (F.scaled_dot_product_attention when present). Parameter names map one to one
onto the exported file (tools/train/export.py).
"""
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


@dataclass
class ModelConfig:
    dim: int = 512
    hidden_dim: int = 1408
    n_layers: int = 8
    n_heads: int = 8
    n_kv_heads: int = 2
    vocab_size: int = 256
    seq_len: int = 8192  # trained context
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5

    @property
    def head_dim(self):
        return self.dim // self.n_heads

    @property
    def kv_dim(self):
        return self.n_kv_heads * self.head_dim

    def to_dict(self):
        return asdict(self)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * self.weight.float()).type_as(x)


def rope_cos_sin(positions, head_dim, theta, device=None):
    """cos and sin of shape [len(positions), head_dim/2] for pair i at angle pos*theta^(-2i/hd).
    Angles are formed in float64 so that large positions keep their precision."""
    i = torch.arange(0, head_dim, 2, dtype=torch.float64, device=device)
    inv_freq = theta ** (-i / head_dim)
    ang = positions.to(torch.float64)[:, None] * inv_freq[None, :]
    return torch.cos(ang).float(), torch.sin(ang).float()


def apply_rope(x, cos, sin):
    """x: [B, T, H, hd]; rotates the adjacent pairs (x[2i], x[2i+1])."""
    xf = x.float().reshape(*x.shape[:-1], -1, 2)
    x0, x1 = xf[..., 0], xf[..., 1]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    out = torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1)
    return out.reshape(x.shape).type_as(x)


def _attend_fallback(q, k, v, q_pos0, chunk=1024):
    """Masked softmax attention in float32, chunked over queries to bound memory.
    q: [B, H, Tq, hd], k/v: [B, H, Tk, hd]; query t sits at position q_pos0 + t and sees
    keys 0..q_pos0+t."""
    B, H, Tq, hd = q.shape
    Tk = k.shape[2]
    scale = 1.0 / math.sqrt(hd)
    kf, vf = k.float(), v.float()
    out = []
    kpos = torch.arange(Tk, device=q.device)
    for t0 in range(0, Tq, chunk):
        qc = q[:, :, t0:t0 + chunk].float()
        s = torch.matmul(qc, kf.transpose(-1, -2)) * scale
        qpos = torch.arange(t0, t0 + qc.shape[2], device=q.device) + q_pos0
        mask = kpos[None, :] > qpos[:, None]
        s = s.masked_fill(mask, float("-inf"))
        out.append(torch.matmul(torch.softmax(s, dim=-1), vf))
    return torch.cat(out, dim=2).type_as(q)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        self.wq = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.wk = nn.Linear(cfg.dim, cfg.kv_dim, bias=False)
        self.wv = nn.Linear(cfg.dim, cfg.kv_dim, bias=False)
        self.wo = nn.Linear(cfg.dim, cfg.dim, bias=False)
        # Optional callable(q, k, v) seeing post-RoPE q [B,T,H,hd], k and v [B,T,KV,hd]
        # (a trace helper records decode steps with it).
        self.qkv_hook = None

    def forward(self, x, cos, sin, start_pos=0, cache=None):
        B, T, _ = x.shape
        q = self.wq(x).view(B, T, self.n_heads, self.head_dim)
        k = self.wk(x).view(B, T, self.n_kv_heads, self.head_dim)
        v = self.wv(x).view(B, T, self.n_kv_heads, self.head_dim)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if self.qkv_hook is not None:
            self.qkv_hook(q, k, v)
        if cache is not None:  # cache: dict with "k", "v" of [B, S, KV, hd] (or empty)
            if "k" in cache:
                k = torch.cat((cache["k"], k), dim=1)
                v = torch.cat((cache["v"], v), dim=1)
            cache["k"], cache["v"] = k, v
        g = self.n_heads // self.n_kv_heads
        q = q.transpose(1, 2)  # [B, H, T, hd]
        k = k.transpose(1, 2).repeat_interleave(g, dim=1)  # head h reads KV head h // g
        v = v.transpose(1, 2).repeat_interleave(g, dim=1)
        Tk = k.shape[2]
        if HAS_SDPA and Tk == T:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        elif HAS_SDPA and T == 1:
            y = F.scaled_dot_product_attention(q, k, v)
        else:
            y = _attend_fallback(q, k, v, q_pos0=Tk - T)
        y = y.transpose(1, 2).reshape(B, T, self.n_heads * self.head_dim)
        return self.wo(y)


class FeedForward(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.w1 = nn.Linear(cfg.dim, cfg.hidden_dim, bias=False)  # gate
        self.w2 = nn.Linear(cfg.hidden_dim, cfg.dim, bias=False)  # down
        self.w3 = nn.Linear(cfg.dim, cfg.hidden_dim, bias=False)  # up

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
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.output = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        # RoPE tables for the trained context (float32; keep the model in float32 and use
        # autocast for lower precision, or these lose precision too). Not in the state_dict.
        cos, sin = rope_cos_sin(torch.arange(cfg.seq_len), cfg.head_dim, cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def init_weights(self, generator=None):
        """Normal(0, 0.02); the residual projections wo and w2 scaled by 1/sqrt(2 n_layers)."""
        std = 0.02
        for name, p in self.named_parameters():
            if p.dim() == 1:
                nn.init.ones_(p)
            else:
                s = std / math.sqrt(2 * self.cfg.n_layers) if name.endswith(("wo.weight", "w2.weight")) else std
                with torch.no_grad():
                    p.normal_(0.0, s, generator=generator)

    def num_params(self):
        return sum(p.numel() for p in self.parameters())

    def rope(self, start, length):
        end = start + length
        if end <= self.rope_cos.shape[0]:
            return self.rope_cos[start:end], self.rope_sin[start:end]
        pos = torch.arange(start, end, device=self.rope_cos.device)
        return rope_cos_sin(pos, self.cfg.head_dim, self.cfg.rope_theta, device=pos.device)

    def forward(self, tokens, start_pos=0, caches=None):
        """tokens: [B, T] int64 bytes. Returns logits [B, T, vocab] (float32 under no autocast).
        With caches (a list of one dict per layer, empty at first) keys and values are kept,
        so generation can feed one token at a time with start_pos = tokens so far."""
        B, T = tokens.shape
        cos, sin = self.rope(start_pos, T)
        h = self.tok_embeddings(tokens)
        for i, layer in enumerate(self.layers):
            h = layer(h, cos, sin, start_pos, None if caches is None else caches[i])
        return self.output(self.norm(h))

    @torch.no_grad()
    def generate(self, prompt, max_new_tokens):
        """Greedy decoding with a KV cache; prompt: list of byte values. Returns new bytes."""
        dev = self.output.weight.device
        caches = [dict() for _ in self.layers]
        x = torch.tensor([prompt], dtype=torch.long, device=dev)
        logits = self.forward(x, 0, caches)
        pos, out = len(prompt), []
        for _ in range(max_new_tokens):
            nxt = int(logits[0, -1].argmax())
            out.append(nxt)
            logits = self.forward(torch.tensor([[nxt]], device=dev), pos, caches)
            pos += 1
        return out
