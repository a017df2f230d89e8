#!/usr/bin/python3
"""Markdown tables from the outputs of tools/eval_model.sh (OUT_DIR as argument)."""
import glob
import json
import os
import sys
from collections import defaultdict


def main():
    out = sys.argv[1]
    ppl = json.load(open(os.path.join(out, "perplexity.json")))
    dense = next(r["perplexity"] for r in ppl["results"] if r["method"] == "dense")
    print(f"### Perplexity (held-out text, {ppl['windows']} windows of {ppl['context']} bytes, "
          f"{ppl['context'] - ppl['prefix']} scored per window)\n")
    print("| method | GQA selection | reallocation | perplexity | vs dense | bits/byte | top-1 | mean α |")
    print("|---|---|---|---|---|---|---|---|")
    for name, gqa, realloc in (("perplexity.json", "shared", "off (default)"),
                               ("perplexity_per_head.json", "per-head", "off (default)"),
                               ("perplexity_realloc.json", "shared", "on")):
        path = os.path.join(out, name)
        if not os.path.exists(path):
            continue
        for r in json.load(open(path))["results"]:
            is_dense = r["method"] == "dense"
            rel = r["perplexity"] / dense - 1
            print(f"| {r['method']} | {'' if is_dense else gqa} | {'' if is_dense else realloc} | "
                  f"{r['perplexity']:.4f} | {100 * rel:+.2f}% | "
                  f"{r['bits_per_byte']:.4f} | {r['top1_accuracy']:.4f} | {r['mean_alpha']:.3f} |")

    index = {p["name"]: p for p in json.load(open(os.path.join(out, "prompts", "index.json")))}
    # (task, method) -> length -> [scores]
    by_len = defaultdict(lambda: defaultdict(list))
    by_depth = defaultdict(lambda: defaultdict(list))
    methods, lengths, depths = [], set(), set()
    for path in sorted(glob.glob(os.path.join(out, "gen", "*.json"))):
        name = os.path.basename(path)[:-5]
        p = index[name]
        for r in json.load(open(path))["results"]:
            if r["method"] not in methods:
                methods.append(r["method"])
            text = r["text"]
            if p["task"] == "passkey":
                score = 100.0 if text.startswith(p["answer"]) else 0.0
            else:
                score = 0
                while score < min(len(text), len(p["answer"])) and text[score] == p["answer"][score]:
                    score += 1
            by_len[(p["task"], r["method"])][p["length"]].append(score)
            by_depth[(p["task"], r["method"])][p["depth"]].append(score)
            lengths.add(p["length"])
            depths.add(p["depth"])
    lengths, depths = sorted(lengths), sorted(depths)
    mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")
    for task, title in (("passkey", "Passkey retrieval accuracy (%), 5-digit key"),
                        ("repeat", "Repetition: mean matched prefix (bytes of a 48-byte quote)")):
        n = len(by_len[(task, methods[0])][lengths[0]]) if methods else 0
        print(f"\n### {title}, by context length ({n} prompts per cell, depths {depths})\n")
        print("| method | " + " | ".join(f"L={L}" for L in lengths) + " | all |")
        print("|---|" + "---|" * (len(lengths) + 1))
        for m in methods:
            cells = [mean(by_len[(task, m)][L]) for L in lengths]
            allv = mean([x for L in lengths for x in by_len[(task, m)][L]])
            print(f"| {m} | " + " | ".join(f"{c:.1f}" for c in cells) + f" | {allv:.1f} |")
        print(f"\nby depth:\n\n| method | " + " | ".join(f"d={d}" for d in depths) + " |")
        print("|---|" + "---|" * len(depths))
        for m in methods:
            print(f"| {m} | " + " | ".join(f"{mean(by_depth[(task, m)][d]):.1f}" for d in depths) + " |")

    ev_path = os.path.join(out, "eval.json")
    if os.path.exists(ev_path):
        ev = json.load(open(ev_path))
        print(f"\n### `sparq eval` on the dense trace ({len(ev['steps'])} decode steps, "
              f"layers {ev['layers']}): attention output vs dense at equal bytes\n")
        print("| method | ratio | transfer | rel L2 | cosine | recall | α true |")
        print("|---|---|---|---|---|---|---|")
        for r in ev["results"]:
            o = r["overall"]
            print(f"| {r['method']} | {r['ratio']:g} | {o['transfer']:.2f} | {o['rel_l2']:.4f} | "
                  f"{o['cosine']:.4f} | {o['recall']:.3f} | {o['alpha_true']:.3f} |")


if __name__ == "__main__":
    main()
