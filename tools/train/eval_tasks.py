#!/usr/bin/python3
"""Dense exact-match accuracy of an exported model on prompts from tasks.py (JSON lines).

  python3 tools/train/tasks.py --heldout HELDOUT --task copy --lengths 1024 --per-cell 20 > copy.jsonl
  /usr/bin/python3 tools/train/eval_tasks.py --model models/sparq-lm-8k.bin --prompts copy.jsonl

A prompt counts when greedy decoding gives exactly its answer (evaluate.answer_correct).
Prints one line per (task, length) and, for passkey, per depth.
"""
import argparse
import json
import os
import sys
from collections import defaultdict

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export  # noqa: E402
from evaluate import answer_correct  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompts", required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = export.read_model(a.model).to(a.device)
    prompts = [json.loads(line) for line in open(a.prompts)]
    bs = a.batch_size or (1 if a.device == "cpu" else 16)
    ok = answer_correct(model, prompts, a.device, batch_size=bs)
    cells = defaultdict(lambda: [0, 0])
    for p, good in zip(prompts, ok):
        for key in [(p["task"], p["length"], None)] + ([(p["task"], p["length"], p["depth"])] if p.get("depth") is not None else []):
            cells[key][0] += int(good)
            cells[key][1] += 1
    for (task, length, depth), (c, n) in sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or -1)):
        where = f" depth {depth:.2f}" if depth is not None else ""
        print(f"{task} length {length}{where}: {c}/{n} exact")


if __name__ == "__main__":
    main()
