"""Training sequences (corpus text with synthetic long-range tasks) and fresh evaluation
prompts for the long-context byte-level model (issue 19).

Tasks, each placed inside real corpus text with its facts at depths drawn uniformly over
the task's span:
- passkey, the format of Mohtashami & Jaggi (2023): INTRO, filler, the needle
  "The pass key is NNNNN. Remember it. NNNNN is the pass key." at some depth, more filler,
  then "What is the pass key? The pass key is" and the answer " NNNNN.";
- multi-key lookup: several "key: value" records scattered through the filler, then
  "What is the value of KEY? The value of KEY is" and " VALUE.";
- copy: "Remember this passage:" + a passage + "End of passage." early, later
  "Repeat the passage:" and the same passage again.
The answer bytes get a larger loss weight. Plain text sequences fill the rest of the mix.

Every training batch is a pure function of (seed, step), so a resumed run sees the same
data. Evaluation prompts take their filler from the held-out text and draw new keys.

CLI: write fresh evaluation prompts as JSON lines (one object per prompt: task, length,
depth, key, prompt, answer; len(prompt) + len(answer) == length):
  python3 tools/train/tasks.py --heldout CORPUS/heldout.txt --task passkey \\
      --lengths 1024,2048,4096,8192 --depths 0.1,0.2,...,0.9 --per-cell 20 --out p.jsonl
"""
import argparse
import json
import sys

import numpy as np

INTRO = ("There is an important info hidden inside a lot of irrelevant text. "
         "Find it and memorize them. I will quiz you about the important information there.")
NEEDLE = "The pass key is {k}. Remember it. {k} is the pass key."
QUESTION = "What is the pass key? The pass key is"
MK_QUESTION = "What is the value of {k}? The value of {k} is"
COPY_OPEN, COPY_CLOSE, COPY_ASK = "Remember this passage:\n", "\nEnd of passage.", "Repeat the passage:\n"
DEFAULT_MIX = {"passkey": 0.35, "multikey": 0.10, "copy": 0.10, "text": 0.45}
ANSWER_WEIGHT = 5.0  # loss weight of passkey and lookup answer digits
COPY_WEIGHT = 2.0  # loss weight of the repeated passage
SEP = b"\n\n"


def b(s):
    return np.frombuffer(s.encode("ascii"), dtype=np.uint8)


class Text:
    """A body of ASCII text as a uint8 array, with random windows cut at line or word starts."""

    def __init__(self, data):
        self.data = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray)) else data
        if len(self.data) < 4096:
            raise ValueError(f"text of {len(self.data)} bytes is too short (need >= 4096)")

    @classmethod
    def load(cls, path):
        with open(path, "rb") as f:
            return cls(f.read())

    def window(self, rng, n):
        """n bytes starting near a random position, moved forward to the next line (or word)
        start within 200 bytes when there is one."""
        n = int(n)
        if n <= 0:
            return np.zeros(0, np.uint8)
        hi = max(1, len(self.data) - n - 256)
        s = int(rng.integers(0, hi))
        look = self.data[s:s + 200]
        nl = np.flatnonzero(look == 10)
        if len(nl):
            s += int(nl[0]) + 1
        else:
            sp = np.flatnonzero(look == 32)
            if len(sp):
                s += int(sp[0]) + 1
        out = self.data[s:s + n]
        if len(out) < n:  # only for n close to the text length
            out = np.resize(self.data, n)
        return out


def _split_point(filler, frac):
    """Index near frac * len(filler), moved back (<= 40 bytes) to just after a space or newline."""
    i = int(round(frac * len(filler)))
    i = min(max(i, 0), len(filler))
    for j in range(i, max(i - 40, 0), -1):
        if filler[j - 1] in (10, 32):
            return j
    return i


def _insert(filler, items, depths):
    """Insert byte arrays `items` into `filler` at fractional depths (sorted together)."""
    order = np.argsort(depths, kind="stable")
    pieces, last = [], 0
    cuts = [_split_point(filler, depths[i]) for i in order]
    for i, c in zip(order, cuts):
        c = max(c, last)
        pieces.append(filler[last:c])
        pieces.append(items[i])
        last = c
    pieces.append(filler[last:])
    return np.concatenate(pieces) if pieces else filler


def digits(rng):
    """Five random digits, the first non-zero (10000-99999), as in the passkey literature."""
    return str(int(rng.integers(10000, 100000)))


def random_key(rng):
    cons, vows = "bcdfghjklmnprstvz", "aeiou"
    syl = int(rng.integers(2, 4))
    word = "".join(cons[int(rng.integers(len(cons)))] + vows[int(rng.integers(len(vows)))] for _ in range(syl))
    return f"{word}-{int(rng.integers(10, 100))}"


# ------------------------------------------------------------------ task builders
# Each returns (bytes uint8, weights float32) of exactly `length` bytes.

def passkey_task(rng, text, length, depth=None, key=None, answer_tail="."):
    key = key or digits(rng)
    depth = float(rng.random()) if depth is None else depth
    head = b(INTRO + "\n")
    needle = b(" " + NEEDLE.format(k=key) + " ")
    tail = b("\n" + QUESTION)
    ans = b(" " + key + answer_tail)
    n_fill = length - len(head) - len(needle) - len(tail) - len(ans)
    if n_fill < 16:
        raise ValueError(f"passkey length {length} is too short")
    body = _insert(text.window(rng, n_fill), [needle], [depth])
    seq = np.concatenate([head, body, tail, ans])
    w = np.ones(len(seq), np.float32)
    w[len(seq) - len(ans) + 1:len(seq) - len(ans) + 1 + len(key)] = ANSWER_WEIGHT
    return seq, w, key


def multikey_task(rng, text, length, n_records=None):
    n = int(rng.integers(2, 13)) if n_records is None else n_records
    keys, vals = [], []
    while len(keys) < n:
        k = random_key(rng)
        if k not in keys:
            keys.append(k)
            vals.append(digits(rng))
    records = [b(f"\n{k}: {v}\n") for k, v in zip(keys, vals)]
    q = int(rng.integers(n))
    tail = b("\n" + MK_QUESTION.format(k=keys[q]))
    ans = b(f" {vals[q]}.")
    n_fill = length - sum(len(r) for r in records) - len(tail) - len(ans)
    if n_fill < 16:
        raise ValueError(f"multikey length {length} is too short for {n} records")
    body = _insert(text.window(rng, n_fill), records, list(rng.random(n)))
    seq = np.concatenate([body, tail, ans])
    w = np.ones(len(seq), np.float32)
    w[len(seq) - len(ans) + 1:len(seq) - 1] = ANSWER_WEIGHT
    return seq, w


def copy_task(rng, text, length, passage_len=None):
    plen = int(rng.integers(32, 385)) if passage_len is None else passage_len
    passage = text.window(rng, plen)
    block = np.concatenate([b("\n" + COPY_OPEN), passage, b(COPY_CLOSE + "\n")])
    tail = np.concatenate([b("\n" + COPY_ASK), passage, b(COPY_CLOSE)])
    n_fill = length - len(block) - len(tail)
    if n_fill < 16:
        raise ValueError(f"copy length {length} is too short for a passage of {plen}")
    # the passage sits in the first 90% so that some filler lies between it and the request
    body = _insert(text.window(rng, n_fill), [block], [0.9 * float(rng.random())])
    seq = np.concatenate([body, tail])
    w = np.ones(len(seq), np.float32)
    w[len(seq) - len(COPY_CLOSE) - plen:len(seq) - len(COPY_CLOSE)] = COPY_WEIGHT
    return seq, w


# ------------------------------------------------------------------ training sequences

def make_sequence(rng, text, n, mix=DEFAULT_MIX, min_task=320):
    """One training sequence of n bytes and its per-byte loss weights.
    A task (if the mix draws one) spans a length drawn uniformly from [min_task, n]; it
    starts the sequence half of the time, else follows some plain text; plain text fills
    the rest, separated by a blank line."""
    kinds = list(mix)
    kind = kinds[int(rng.choice(len(kinds), p=np.array([mix[k] for k in kinds]) / sum(mix.values())))]
    if kind == "text" or n < min_task + 8:
        return text.window(rng, n).copy(), np.ones(n, np.float32), kind
    L = int(rng.integers(min_task, n + 1))
    if kind == "passkey":
        seq, w, _ = passkey_task(rng, text, L)
    elif kind == "multikey":
        seq, w = multikey_task(rng, text, L, n_records=int(rng.integers(2, 2 + max(1, min(11, L // 200)))))
    else:
        seq, w = copy_task(rng, text, L, passage_len=int(rng.integers(32, min(385, max(33, L // 4)))))
    before = 0 if rng.random() < 0.5 or L > n - 2 * len(SEP) else int(rng.integers(0, n - L - len(SEP) + 1))
    parts, wparts = [], []
    if before > 0:
        parts += [text.window(rng, before), SEP_ARR]
        wparts += [np.ones(before + len(SEP), np.float32)]
    parts.append(seq)
    wparts.append(w)
    rest = n - sum(len(p) for p in parts)
    if rest > 0:
        parts += [SEP_ARR[:rest], text.window(rng, max(0, rest - len(SEP)))]
        wparts += [np.ones(rest, np.float32)]
    out, wout = np.concatenate(parts)[:n], np.concatenate(wparts)[:n]
    assert len(out) == n and len(wout) == n, (len(out), len(wout), n)
    return out, wout, kind


SEP_ARR = np.frombuffer(SEP, dtype=np.uint8)


def make_batch(seed, step, text, batch, n, mix=DEFAULT_MIX):
    """Batch for `step`: tokens [batch, n] uint8 and weights [batch, n] float32, a pure
    function of (seed, step, text, batch, n, mix)."""
    rng = np.random.default_rng([seed, step])
    toks = np.empty((batch, n), np.uint8)
    ws = np.empty((batch, n), np.float32)
    for i in range(batch):
        toks[i], ws[i], _ = make_sequence(rng, text, n, mix)
    return toks, ws


# ------------------------------------------------------------------ evaluation prompts

def passkey_prompts(text, lengths, depths, per_cell, seed):
    """Fresh passkey prompts: for each length and depth, per_cell prompts with new keys and
    filler from `text` (the held-out split). prompt + answer is exactly `length` bytes;
    answer is " NNNNN"."""
    rng = np.random.default_rng([seed, 0x9A55])
    out = []
    for L in lengths:
        for d in depths:
            for _ in range(per_cell):
                seq, _, key = passkey_task(rng, text, L, depth=d, answer_tail="")
                s = seq.tobytes().decode("ascii")
                out.append({"task": "passkey", "length": L, "depth": d, "key": key,
                            "prompt": s[:-(len(key) + 1)], "answer": " " + key})
    return out


def multikey_prompts(text, lengths, per_cell, seed, n_records=8):
    rng = np.random.default_rng([seed, 0x3E75])
    out = []
    for L in lengths:
        for _ in range(per_cell):
            seq, w = multikey_task(rng, text, L + 1, n_records=n_records)  # +1: drop the final "."
            s = seq.tobytes().decode("ascii")[:-1]
            ans = s[s.rindex(" is ") + 3:]
            out.append({"task": "multikey", "length": L, "depth": None, "key": None,
                        "prompt": s[:-len(ans)], "answer": ans})
    return out


def copy_prompts(text, lengths, per_cell, seed, passage_len=64):
    rng = np.random.default_rng([seed, 0xC0B1])
    out = []
    for L in lengths:
        for _ in range(per_cell):
            seq, _ = copy_task(rng, text, L + len(COPY_CLOSE), passage_len=passage_len)
            s = seq.tobytes().decode("ascii")[:-len(COPY_CLOSE)]
            out.append({"task": "copy", "length": L, "depth": None, "key": None,
                        "prompt": s[:-passage_len], "answer": s[-passage_len:]})
    return out


def main():
    ap = argparse.ArgumentParser(description="Write fresh evaluation prompts as JSON lines.")
    ap.add_argument("--heldout", required=True, help="held-out text (build_corpus.py's heldout.txt)")
    ap.add_argument("--task", choices=["passkey", "multikey", "copy"], default="passkey")
    ap.add_argument("--lengths", default="1024,2048,4096,8192")
    ap.add_argument("--depths", default="0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9")
    ap.add_argument("--per-cell", type=int, default=20)
    ap.add_argument("--seed", type=int, default=20240519)
    ap.add_argument("--out", default="-")
    a = ap.parse_args()
    text = Text.load(a.heldout)
    lengths = [int(x) for x in a.lengths.split(",")]
    if a.task == "passkey":
        rows = passkey_prompts(text, lengths, [float(x) for x in a.depths.split(",")], a.per_cell, a.seed)
    elif a.task == "multikey":
        rows = multikey_prompts(text, lengths, a.per_cell, a.seed)
    else:
        rows = copy_prompts(text, lengths, a.per_cell, a.seed)
    f = sys.stdout if a.out == "-" else open(a.out, "w")
    for r in rows:
        f.write(json.dumps(r) + "\n")
    if f is not sys.stdout:
        f.close()


if __name__ == "__main__":
    main()
