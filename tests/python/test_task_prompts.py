"""`sparq passkey --dump-prompts` writes the same prompts as tools/train/tasks.py (passkey and
copy, same held-out text and seed), field for field: the C++ port of NumPy's generator and
of tasks.py's builders (lib/eval/task_prompts.cpp) must stay in step with the Python."""
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TASKS = os.path.join(ROOT, "tools", "train", "tasks.py")


def load_tasks():
    spec = importlib.util.spec_from_file_location("train_tasks", TASKS)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def heldout_text(path):
    """ASCII lines of random words, with some long lines (the filler window moves to a line or
    word start) and a few very short ones."""
    rng = np.random.default_rng(5)
    words = ["alpha", "beta", "kernel", "page", "cache", "the", "of", "a", "license", "memory", "thread", "x"]
    lines = []
    for i in range(3000):
        n = int(rng.integers(0, 30)) if i % 50 else 120
        lines.append(" ".join(words[int(j)] for j in rng.integers(0, len(words), n)))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def dump(args, out):
    r = subprocess.run([os.environ["SPARQ_CLI"], "passkey", "--model", "unused.bin", *args, "--dump-prompts", out],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in open(out)]


@pytest.mark.skipif(not os.path.exists(TASKS), reason="tools/train/tasks.py (branch train) is not in this tree yet")
@pytest.mark.parametrize("seed", [20240519, 7919, 5 << 33])
def test_prompts_equal_tasks_py(seed):
    tasks = load_tasks()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "heldout.txt")
        heldout_text(path)
        text = tasks.Text.load(path)
        got = dump(["--heldout", path, "--lengths", "1k,3000,8k", "--depths", "0,10,33,50,90,100", "--keys", "3",
                    "--seed", str(seed)], os.path.join(tmp, "p.jsonl"))
        want = tasks.passkey_prompts(text, [1024, 3000, 8192], [0.0, 0.1, 0.33, 0.5, 0.9, 1.0], 3, seed)
        assert len(got) == len(want) == 54
        for g, w in zip(got, want):
            assert g == w
        got = dump(["--heldout", path, "--task", "copy", "--lengths", "1k,4k", "--keys", "4", "--seed", str(seed)],
                   os.path.join(tmp, "c.jsonl"))
        want = tasks.copy_prompts(text, [1024, 4096], 4, seed)
        assert got == want
