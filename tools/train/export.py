#!/usr/bin/python3
"""Export the model to sparq's checkpoint format (version 2) and check the exported file.

Format, little-endian:
  8 bytes magic "SPQLM\\0\\0\\0"; u32 version = 2; u32 dtype (1 = f16, 2 = bf16);
  i32 dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
  f32 rope_theta, f32 norm_eps;
  tensors in `dtype`, row-major [out][in] (y = W x): token_embedding [vocab][dim]; then per
  kind, all layers in order: attn_norm [dim], wq [dim][dim], wk [kv_dim][dim],
  wv [kv_dim][dim], wo [dim][dim], ffn_norm [dim], w1 (gate) [hidden][dim],
  w2 (down) [dim][hidden], w3 (up) [hidden][dim]; final_norm [dim]; classifier [vocab][dim].
  Nothing follows. A sidecar FILE.sha256 in sha256sum format names the file's hash.

Usage:
  export.py --ckpt OUT/ckpt.pt --out models/sparq-lm-8k.bin      # write .bin and .sha256
  export.py --check models/sparq-lm-8k.bin --heldout CORPUS/heldout.txt [--ckpt OUT/ckpt.pt]
With --ckpt, --check compares the file against that checkpoint's float32 model; without, it
compares against the figures recorded in the file's JSON ("check" section).
"""
import argparse
import hashlib
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import ModelConfig, Transformer  # noqa: E402

MAGIC = b"SPQLM\0\0\0"
VERSION = 2
DTYPES = {"f16": (1, torch.float16), "bf16": (2, torch.bfloat16)}
HEADER = struct.Struct("<8sII7i2f")
LAYER_KINDS = [("attn_norm", "attn_norm.weight"), ("wq", "attn.wq.weight"), ("wk", "attn.wk.weight"),
               ("wv", "attn.wv.weight"), ("wo", "attn.wo.weight"), ("ffn_norm", "ffn_norm.weight"),
               ("w1", "ffn.w1.weight"), ("w2", "ffn.w2.weight"), ("w3", "ffn.w3.weight")]


def load_checkpoint(path):
    """train.py's checkpoint (it holds numpy and Python RNG states, so not weights-only)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except TypeError:  # torch without the weights_only argument
        return torch.load(path, map_location="cpu")


def tensor_order(cfg):
    """(state_dict name, shape) in file order."""
    d, h, kv, V = cfg.dim, cfg.hidden_dim, cfg.kv_dim, cfg.vocab_size
    shapes = {"attn_norm": (d,), "wq": (d, d), "wk": (kv, d), "wv": (kv, d), "wo": (d, d),
              "ffn_norm": (d,), "w1": (h, d), "w2": (d, h), "w3": (h, d)}
    out = [("tok_embeddings.weight", (V, d))]
    for kind, suffix in LAYER_KINDS:
        out += [(f"layers.{i}.{suffix}", shapes[kind]) for i in range(cfg.n_layers)]
    out += [("norm.weight", (d,)), ("output.weight", (V, d))]
    return out


def file_size(cfg, dtype="bf16"):
    elem = 2
    return HEADER.size + elem * sum(int(np.prod(s)) for _, s in tensor_order(cfg))


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for blk in iter(lambda: f.read(1 << 20), b""):
            h.update(blk)
    return h.hexdigest()


def write_model(state_dict, cfg, path, dtype="bf16"):
    """Write `path` atomically (tmp + rename) and its sidecar path.sha256. Returns the sha256."""
    code, tdtype = DTYPES[dtype]
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(HEADER.pack(MAGIC, VERSION, code, cfg.dim, cfg.hidden_dim, cfg.n_layers, cfg.n_heads,
                            cfg.n_kv_heads, cfg.vocab_size, cfg.seq_len, cfg.rope_theta, cfg.norm_eps))
        for name, shape in tensor_order(cfg):
            t = state_dict[name].detach()
            if tuple(t.shape) != shape:
                raise ValueError(f"{name} has shape {tuple(t.shape)}, expected {shape}")
            raw = t.float().cpu().contiguous().to(tdtype).view(torch.int16).numpy()
            f.write(raw.astype("<i2", copy=False).tobytes())
    if os.path.getsize(tmp) != file_size(cfg, dtype):
        raise RuntimeError(f"{tmp}: size {os.path.getsize(tmp)} != {file_size(cfg, dtype)}")
    os.replace(tmp, path)
    digest = sha256_file(path)
    with open(path + ".sha256", "w") as f:
        f.write(f"{digest}  {os.path.basename(path)}\n")
    return digest


def read_model(path, verify_sha=True):
    """Load an exported file into a float32 Transformer (on the CPU)."""
    if verify_sha and os.path.exists(path + ".sha256"):
        want = open(path + ".sha256").read().split()[0]
        got = sha256_file(path)
        if want != got:
            raise ValueError(f"{path}: sha256 {got} does not match {path}.sha256 ({want})")
    with open(path, "rb") as f:
        data = f.read()
    magic, version, code, *ints, theta, eps = HEADER.unpack_from(data, 0)
    if magic != MAGIC or version != VERSION:
        raise ValueError(f"{path}: not an SPQLM v{VERSION} file (magic {magic!r}, version {version})")
    dtype = {c: t for c, t in DTYPES.values()}.get(code)
    if dtype is None:
        raise ValueError(f"{path}: unknown dtype code {code}")
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len = ints
    cfg = ModelConfig(dim=dim, hidden_dim=hidden, n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_kv,
                      vocab_size=vocab, seq_len=seq_len, rope_theta=theta, norm_eps=eps)
    if len(data) != file_size(cfg):
        raise ValueError(f"{path}: {len(data)} bytes, the header implies {file_size(cfg)}")
    sd, off = {}, HEADER.size
    for name, shape in tensor_order(cfg):
        n = int(np.prod(shape))
        raw = np.frombuffer(data, dtype="<i2", count=n, offset=off).copy()
        sd[name] = torch.from_numpy(raw).view(dtype).float().reshape(shape)
        off += 2 * n
    model = Transformer(cfg)
    model.load_state_dict(sd)
    return model


def compare(ref, test, tol_loss=0.02, max_passkey_diff=None):
    """Compare two eval dicts {"heldout": {...}, "passkey": table}. Returns (ok, lines)."""
    lines, ok = [], True
    dl = abs(ref["heldout"]["loss"] - test["heldout"]["loss"])
    lines.append(f"held-out loss: reference {ref['heldout']['loss']:.4f}, exported {test['heldout']['loss']:.4f}"
                 f" (|diff| {dl:.4f}, tolerance {tol_loss})")
    ok &= dl <= tol_loss
    for L, t in sorted(ref["passkey"].items(), key=lambda kv: int(kv[0])):
        u = test["passkey"].get(L, {"correct": -1, "total": t["total"]})
        allowed = max_passkey_diff if max_passkey_diff is not None else max(1, t["total"] // 20)
        good = abs(t["correct"] - u["correct"]) <= allowed
        ok &= good
        lines.append(f"passkey {L}: reference {t['correct']}/{t['total']}, exported {u['correct']}/{u['total']}"
                     f" ({'ok' if good else 'MISMATCH'}, allowed difference {allowed})")
    return ok, lines


def evaluate_subset(model, heldout_text, device, lengths, per_cell, seed, hl_windows, hl_length, batch_size):
    """The fixed check subset: passkey at `lengths` x depths 0.1..0.9 x per_cell, and held-out loss."""
    from evaluate import answer_correct, heldout_loss, passkey_table
    from tasks import passkey_prompts
    depths = [round(0.1 * i, 1) for i in range(1, 10)]
    prompts = passkey_prompts(heldout_text, lengths, depths, per_cell, seed)
    correct = answer_correct(model, prompts, device, batch_size=batch_size)
    return {"heldout": heldout_loss(model, heldout_text, device, n_windows=hl_windows, length=hl_length),
            "passkey": passkey_table(prompts, correct)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", help="training checkpoint (train.py's ckpt.pt)")
    ap.add_argument("--out", help="exported file to write")
    ap.add_argument("--dtype", choices=list(DTYPES), default="bf16")
    ap.add_argument("--check", metavar="FILE", help="check an exported file")
    ap.add_argument("--heldout", help="held-out text, for --check")
    ap.add_argument("--lengths", default=None, help="passkey lengths for --check (default: the JSON's)")
    ap.add_argument("--per-cell", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.out:
        if not a.ckpt:
            sys.exit("--out needs --ckpt")
        ck = load_checkpoint(a.ckpt)
        cfg = ModelConfig(**ck["config"])
        digest = write_model(ck["model"], cfg, a.out, a.dtype)
        print(f"wrote {a.out} ({os.path.getsize(a.out)} bytes, sha256 {digest})")
    if a.check:
        from tasks import Text
        if not a.heldout:
            sys.exit("--check needs --heldout")
        text = Text.load(a.heldout)
        model = read_model(a.check).to(a.device)
        meta_path = os.path.splitext(a.check)[0] + ".json"
        meta = json.load(open(meta_path)) if os.path.exists(meta_path) else {}
        spec = dict(meta.get("check", {}).get("spec", {}))
        if a.lengths:
            spec["lengths"] = [int(x) for x in a.lengths.split(",")]
        if a.per_cell:
            spec["per_cell"] = a.per_cell
        spec.setdefault("lengths", [1024, 2048])
        spec.setdefault("per_cell", 1)
        spec.setdefault("seed", 20240519)
        spec.setdefault("hl_windows", 4)
        spec.setdefault("hl_length", 2048)
        args = (text, a.device, spec["lengths"], spec["per_cell"], spec["seed"], spec["hl_windows"],
                spec["hl_length"], 1 if a.device == "cpu" else 16)
        test = evaluate_subset(model, *args)
        if a.ckpt:
            ck = load_checkpoint(a.ckpt)
            ref_model = Transformer(ModelConfig(**ck["config"]))
            ref_model.load_state_dict(ck["model"])
            ref = evaluate_subset(ref_model.to(a.device), *args)
            what = "the checkpoint's float32 model"
        elif "check" in meta and meta["check"]["spec"]["lengths"][:len(spec["lengths"])] == spec["lengths"] \
                and meta["check"]["spec"].get("per_cell") == spec["per_cell"]:
            # the recorded prompts are drawn length by length from one generator, so a prefix
            # of the recorded lengths gives the same prompts (a cheaper check on a CPU)
            ref = dict(meta["check"]["reference"])
            ref["passkey"] = {L: t for L, t in ref["passkey"].items() if int(L) in spec["lengths"]}
            what = f"the figures in {meta_path} (in-memory model at export time, {meta.get('device', '?')})"
        else:
            print(json.dumps(test, indent=1))
            sys.exit("no reference to compare with (give --ckpt, or the JSON's check spec)")
        ok, lines = compare(ref, test)
        print(f"check of {a.check} against {what}:")
        print("\n".join("  " + ln for ln in lines))
        print("CHECK OK" if ok else "CHECK FAILED")
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
