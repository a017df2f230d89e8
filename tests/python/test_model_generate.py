"""The PyTorch model generates the same tokens with its attention through sparq's torch ops
as `sparq generate` (the C++ runner) does on the same checkpoint, dense and SparQ.

The model is the project's own PyTorch definition, tools/train/model.py (the one the
checkpoint was trained with), at a tiny size with seeded random weights; only its attention
modules are swapped for SparqAttention, which calls sparq.torch_ops.attention."""
import copy
import importlib.util
import os
import struct
import tempfile

import pytest
import torch
import torch.nn as nn

import sparq
import sparq.torch_ops as ops
from sparq_test_util import run_cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load_train_model():
    spec = importlib.util.spec_from_file_location("sparq_train_model", os.path.join(ROOT, "tools", "train", "model.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


train_model = _load_train_model()
apply_rope = train_model.apply_rope

PROMPT = "The quick brown fox jumps"
TOKENS = 24


class SparqAttention(nn.Module):
    """The model's Attention with K/V kept in a sparq.KVCache: same weights, same RoPE."""

    def __init__(self, attn, layer):
        super().__init__()
        self.attn, self.layer = attn, layer

    def forward(self, x, cos, sin, start_pos=0, state=None):
        a = self.attn
        B, T, _ = x.shape
        q = apply_rope(a.wq(x).view(B, T, a.n_heads, a.head_dim), cos, sin)
        k = apply_rope(a.wk(x).view(B, T, a.n_kv_heads, a.head_dim), cos, sin)
        v = a.wv(x).view(B, T, a.n_kv_heads, a.head_dim)
        y = ops.attention(q, k, v, state["cache"], self.layer, state["seqs"], state["method"])
        return a.wo(y.reshape(B, T, a.n_heads * a.head_dim))


def generate_with_sparq(model, method, prompt, n):
    """As `sparq generate`: prefill the prompt minus its last byte (dense causal), then one
    decode step per token with `method`, greedy."""
    model = copy.deepcopy(model)
    for i, block in enumerate(model.layers):
        block.attn = SparqAttention(block.attn, i)
    c = model.cfg
    cache = sparq.KVCache(layers=c.n_layers, kv_heads=c.n_kv_heads, head_dim=c.head_dim, dtype="f32",
                          block_tokens=64, capacity_tokens=8 * c.seq_len)
    state = {"cache": cache, "seqs": [cache.add_sequence()], "method": method}
    states = [state] * c.n_layers
    out = []
    with torch.inference_mode():
        model(torch.tensor([prompt[:-1]]), 0, states)
        nxt, pos = prompt[-1], len(prompt) - 1
        for _ in range(n):
            logits = model(torch.tensor([[nxt]]), pos, states)
            nxt = int(logits[0, -1].argmax())
            out.append(nxt)
            pos += 1
    return out


def generate_plain(model, prompt, n):
    """The model's own attention (torch), for reference."""
    caches = [dict() for _ in model.layers]
    out = []
    with torch.inference_mode():
        logits = model(torch.tensor([prompt]), 0, caches)
        pos = len(prompt)
        for _ in range(n):
            out.append(int(logits[0, -1].argmax()))
            logits = model(torch.tensor([[out[-1]]]), pos, caches)
            pos += 1
    return out


def random_model(seed, std=0.08):
    """A tiny model (the trained one's architecture at dim 64) with seeded weights larger than
    the training init, so attention is far from uniform and tokens depend on it."""
    cfg = train_model.ModelConfig(dim=64, hidden_dim=96, n_layers=2, n_heads=4, n_kv_heads=2, seq_len=256)
    model = train_model.Transformer(cfg)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.normal_(0.0, std, generator=gen)
    return model.eval()


def write_llama2c(model, path):
    """The model as a llama2.c f32 checkpoint with a separate classifier (sparq generate reads
    it; f32, so both sides compute with the same weights)."""
    c = model.cfg
    blocks = list(model.layers)
    tensors = [model.tok_embeddings.weight]
    for get in (lambda b: b.attn_norm.weight, lambda b: b.attn.wq.weight, lambda b: b.attn.wk.weight,
                lambda b: b.attn.wv.weight, lambda b: b.attn.wo.weight, lambda b: b.ffn_norm.weight,
                lambda b: b.ffn.w1.weight, lambda b: b.ffn.w2.weight, lambda b: b.ffn.w3.weight):
        tensors += [get(b) for b in blocks]
    tensors += [model.norm.weight, model.rope_cos, model.rope_sin, model.output.weight]
    with open(path, "wb") as f:
        f.write(struct.pack("<7i", c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, -c.vocab_size,
                            c.seq_len))
        for t in tensors:
            f.write(t.detach().float().contiguous().numpy().tobytes())


@pytest.fixture(scope="module")
def checkpoint():
    model = random_model(seed=5)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "tiny.bin")
        write_llama2c(model, path)
        j = run_cli("generate", "--model", path, "--prompt", PROMPT, "--tokens", str(TOKENS), "--method",
                    "dense,sparq:2", "--json")
        yield model, {r["method"]: r["tokens"] for r in j["results"]}


def test_dense_tokens_equal_sparq_generate(checkpoint):
    model, cpp = checkpoint
    prompt = list(PROMPT.encode())
    with_sparq = generate_with_sparq(model, sparq.Dense(), prompt, TOKENS)
    assert with_sparq == cpp["dense"]
    assert generate_plain(model, prompt, TOKENS) == with_sparq  # and the model's own attention agrees


def test_sparq_tokens_equal_sparq_generate(checkpoint):
    model, cpp = checkpoint
    with_sparq = generate_with_sparq(model, sparq.SparQ(2), list(PROMPT.encode()), TOKENS)
    assert with_sparq == cpp["sparq:2"]
