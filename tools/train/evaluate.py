"""Dense evaluation of the model in PyTorch: passkey accuracy on fresh prompts and held-out loss.

A greedy decode reproduces an answer exactly iff, feeding the prompt and the answer's own
bytes, the argmax at every answer position is the answer's next byte; so one forward pass
per prompt scores it (teacher-forced exact match == greedy exact match).
"""
import contextlib
import math
from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F


def autocast_for(device):
    if torch.device(device).type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def answer_correct(model, prompts, device, batch_size=16):
    """List of bools: does greedy decoding after each prompt give exactly its answer?
    prompts: dicts with 'prompt' and 'answer' (ASCII strings)."""
    was_training = model.training
    model.eval()
    results = [None] * len(prompts)
    by_len = defaultdict(list)
    for i, p in enumerate(prompts):
        by_len[(len(p["prompt"]), len(p["answer"]))].append(i)
    for (lp, la), idx in sorted(by_len.items()):
        for s in range(0, len(idx), batch_size):
            chunk = idx[s:s + batch_size]
            seqs = [(prompts[i]["prompt"] + prompts[i]["answer"][:-1]).encode("ascii") for i in chunk]
            x = torch.tensor(np.frombuffer(b"".join(seqs), np.uint8).reshape(len(chunk), -1).astype(np.int64),
                             device=device)
            with autocast_for(device):
                logits = model(x)
            pred = logits[:, lp - 1:lp - 1 + la].argmax(-1).cpu()
            for j, i in enumerate(chunk):
                want = torch.tensor(list(prompts[i]["answer"].encode("ascii")))
                results[i] = bool((pred[j] == want).all())
    model.train(was_training)
    return results


def passkey_table(prompts, correct):
    """{length: {"correct": c, "total": n, "by_depth": {depth: [c, n]}}}"""
    table = {}
    for p, ok in zip(prompts, correct):
        t = table.setdefault(str(p["length"]), {"correct": 0, "total": 0, "by_depth": {}})
        t["correct"] += int(ok)
        t["total"] += 1
        d = t["by_depth"].setdefault(f"{p['depth']:.2f}", [0, 0])
        d[0] += int(ok)
        d[1] += 1
    return table


def format_table(table):
    return " ".join(f"{L}:{t['correct']}/{t['total']}" for L, t in sorted(table.items(), key=lambda kv: int(kv[0])))


@torch.no_grad()
def heldout_loss(model, text, device, n_windows=8, length=2048, seed=7, batch_size=8):
    """Mean next-byte cross-entropy (nats) over n_windows fixed windows of `length` bytes of
    held-out text (window starts from a fixed seed)."""
    was_training = model.training
    model.eval()
    rng = np.random.default_rng([seed, 0x4E1D])
    hi = len(text.data) - length - 2
    starts = rng.integers(0, hi, size=n_windows)
    total, count = 0.0, 0
    for s in range(0, n_windows, batch_size):
        arr = np.stack([text.data[a:a + length + 1] for a in starts[s:s + batch_size]]).astype(np.int64)
        x = torch.from_numpy(arr).to(device)
        with autocast_for(device):
            logits = model(x[:, :-1])
        ce = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="sum")
        total += float(ce)
        count += x[:, 1:].numel()
    model.train(was_training)
    loss = total / count
    return {"loss": loss, "bpb": loss / math.log(2), "windows": n_windows, "length": length}
