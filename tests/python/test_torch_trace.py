"""tools/trace/torch_trace.py records the same decode trace from the PyTorch model as the C++
runner writes (`sparq generate --trace`) for the same weights and prompt, within float
tolerance; and `sparq eval` reads it.

Models: tests/python/tiny_llama.py (the projection-hook route: the recorder applies RoPE
itself) and, when it is in the tree, the project's own tools/train/model.py (its
Attention.qkv_hook hands over the post-RoPE tensors), exported by tools/train/export.py.
Both are written as SPQLM v2 bf16 checkpoints, and the torch model keeps the same
bf16-rounded weights."""
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools", "trace"))
from torch_trace import TraceRecorder, attention_modules  # noqa: E402
import tiny_llama  # noqa: E402

PROMPT = b"The pass key is 71432. Remember it. 71432 is the pass key. What is the pass key?"
TOKENS = 12
TRAIN_DIR = os.path.join(ROOT, "tools", "train")
HAS_TRAIN_MODEL = os.path.exists(os.path.join(TRAIN_DIR, "model.py")) and os.path.exists(
    os.path.join(TRAIN_DIR, "export.py"))


def run_cli(*args):
    """The C++ CLI (SPARQ_CLI, set by ctest); JSON output parsed. This test needs no sparq module."""
    r = subprocess.run([os.environ["SPARQ_CLI"], *args], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"sparq {' '.join(args)} failed ({r.returncode}): {r.stderr}"
    return json.loads(r.stdout)


def generate_like_cpp(model, prompt, n):
    """As `sparq generate`: prefill prompt[:-1], then one step per token from prompt[-1], greedy."""
    caches = [dict() for _ in model.layers]
    out = []
    with torch.no_grad():
        model(torch.tensor([list(prompt[:-1])]), 0, caches)
        nxt, pos = prompt[-1], len(prompt) - 1
        for _ in range(n):
            logits = model(torch.tensor([[nxt]]), pos, caches)
            nxt = int(logits[0, -1].argmax())
            out.append(nxt)
            pos += 1
    return out


def compare_traces(py_dir, cpp_dir):
    mp = json.load(open(os.path.join(py_dir, "manifest.json")))
    mc = json.load(open(os.path.join(cpp_dir, "manifest.json")))
    for f in ("layers", "q_heads", "kv_heads", "head_dim", "positions", "prefill"):
        assert mp[f] == mc[f], f"{f}: python {mp[f]}, C++ {mc[f]}"
    assert np.array_equal(np.load(os.path.join(py_dir, "tokens.npy")), np.load(os.path.join(cpp_dir, "tokens.npy")))
    worst = 0.0
    for layer in range(mp["layers"]):
        for w in "qkv":
            a = np.load(os.path.join(py_dir, mp["files"][layer][w]))
            b = np.load(os.path.join(cpp_dir, mc["files"][layer][w]))
            assert a.shape == b.shape and a.dtype == np.float32, (layer, w, a.shape, b.shape)
            scale = np.abs(b).max()
            err = np.abs(a - b).max() / scale
            worst = max(worst, err)
            assert err < 1e-4, f"layer {layer} {w}: max |python - C++| = {err:.2e} of max |x| = {scale:.3f}"
    return worst


def check_model(model, tmp, rope_theta, export):
    path = os.path.join(tmp, "model.bin")
    export(model, path)
    with TraceRecorder(model, rope_theta=rope_theta) as rec:
        out = generate_like_cpp(model, PROMPT, TOKENS)
    fed = list(PROMPT) + out[:-1]
    rec.write(os.path.join(tmp, "py"), prefill=len(PROMPT) - 1, tokens=fed, source="test_torch_trace")
    res = run_cli("generate", "--model", path, "--require-hash", "--prompt", PROMPT.decode(), "--tokens", str(TOKENS),
                  "--method", "dense", "--trace", os.path.join(tmp, "cpp"), "--json")
    assert res["results"][0]["tokens"] == out, "the C++ runner generated other tokens than PyTorch"
    worst = compare_traces(os.path.join(tmp, "py"), os.path.join(tmp, "cpp"))
    ev = run_cli("eval", os.path.join(tmp, "py"), "--ratios", "4", "--methods", "sparq,oracle", "--json")
    assert [r["method"] for r in ev["results"]] == ["sparq", "oracle"]  # sparq eval read the Python trace
    return worst


def test_tiny_llama_projection_hooks():
    cfg = tiny_llama.ModelConfig(dim=64, hidden_dim=96, n_layers=2, n_heads=4, n_kv_heads=2, seq_len=256,
                                 rope_theta=5000.0)
    model = tiny_llama.round_weights(tiny_llama.random_model(cfg, seed=3))
    assert not hasattr(model.layers[0].attn, "qkv_hook")  # the generic route
    assert len(attention_modules(model)) == 2
    with tempfile.TemporaryDirectory() as tmp:
        check_model(model, tmp, 5000.0, lambda m, p: tiny_llama.write_spqlm(m, p, "bf16"))


@pytest.mark.skipif(not HAS_TRAIN_MODEL, reason="tools/train/model.py (branch train) is not in this tree yet")
def test_project_model_qkv_hook():
    def load(name):
        spec = importlib.util.spec_from_file_location(f"train_{name}", os.path.join(TRAIN_DIR, f"{name}.py"))
        mod = importlib.util.module_from_spec(spec)
        sys.path.insert(0, TRAIN_DIR)
        spec.loader.exec_module(mod)
        return mod
    model_py, export_py = load("model"), load("export")
    cfg = model_py.ModelConfig(dim=64, hidden_dim=96, n_layers=2, n_heads=4, n_kv_heads=2, seq_len=256)
    model = model_py.Transformer(cfg)
    model.init_weights(torch.Generator().manual_seed(4))
    with torch.no_grad():
        for p in model.parameters():  # larger weights than the training init, so attention is not uniform
            p.mul_(4.0) if p.dim() > 1 else p.add_(0.1 * torch.randn_like(p))
    model = tiny_llama.round_weights(model.eval())
    assert hasattr(model.layers[0].attn, "qkv_hook")
    with tempfile.TemporaryDirectory() as tmp:
        check_model(model, tmp, cfg.rope_theta,
                    lambda m, p: export_py.write_model(m.state_dict(), cfg, p, "bf16"))


def test_recorder_errors():
    cfg = tiny_llama.ModelConfig(dim=32, hidden_dim=48, n_layers=1, n_heads=2, n_kv_heads=1, seq_len=64)
    model = tiny_llama.random_model(cfg, seed=1)
    with pytest.raises(ValueError, match="rope"):
        TraceRecorder(model, rope="neox")
    with pytest.raises(ValueError, match="no attention module"):
        TraceRecorder(torch.nn.Linear(2, 2))
    with TraceRecorder(model) as rec, torch.no_grad():
        with pytest.raises(ValueError, match="batch 2"):
            model(torch.zeros((2, 3), dtype=torch.long))
    with TraceRecorder(model) as rec, torch.no_grad():
        model(torch.zeros((1, 3), dtype=torch.long))
    with pytest.raises(ValueError, match="prefill"):
        rec.write(tempfile.mkdtemp(), prefill=3)
