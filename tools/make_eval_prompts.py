#!/usr/bin/python3
"""Passkey and repetition prompts for tools/eval_model.sh, built from held-out text.

The tasks have the exact wording the model was trained on (tools/train_tiny_llama.py)
but their filler is text the model never saw (tools/model/heldout.txt). Deterministic
for a given seed. Writes OUT/<name>.txt (the prompt) and OUT/index.json:
  [{"name", "task": "passkey"|"repeat", "length", "depth", "answer", "tokens"}]
`tokens` is how many tokens to generate; the prompt plus the answer is `length` bytes.
"""
import argparse
import json
import os
import random


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heldout", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--lengths", default="256,512,1024,2048")
    ap.add_argument("--depths", default="0.1,0.3,0.5,0.7,0.9")
    ap.add_argument("--trials", type=int, default=2, help="prompts per (task, length, depth)")
    ap.add_argument("--quote-bytes", type=int, default=48)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    text = open(args.heldout, "rb").read()
    os.makedirs(args.out, exist_ok=True)
    index = []

    def filler(n):
        start = rng.randrange(0, len(text) - n - 1)
        return text[start:start + n]

    for length in map(int, args.lengths.split(",")):
        for depth in map(float, args.depths.split(",")):
            for trial in range(args.trials):
                key = "".join(rng.choice("0123456789") for _ in range(5)).encode()
                tasks = {
                    "passkey": (b" The pass key is " + key + b". Remember it. " + key + b" is the pass key. ",
                                b"\nWhat is the pass key? The pass key is ", key),
                }
                quote = filler(args.quote_bytes)
                tasks["repeat"] = (b"\nQuote: " + quote + b"\n", b"\nRepeat the quote: ", quote)
                for task, (insert, query, answer) in tasks.items():
                    n_fill = length - len(insert) - len(query) - len(answer)
                    fill = filler(n_fill)
                    at = int(round(depth * n_fill))
                    prompt = fill[:at] + insert + fill[at:] + query
                    name = f"{task}_L{length}_d{depth}_t{trial}"
                    with open(os.path.join(args.out, name + ".txt"), "wb") as f:
                        f.write(prompt)
                    index.append(dict(name=name, task=task, length=length, depth=depth,
                                      answer=answer.decode("ascii", "backslashreplace"), tokens=len(answer)))
    with open(os.path.join(args.out, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
    print(f"wrote {len(index)} prompts to {args.out}")


if __name__ == "__main__":
    main()
