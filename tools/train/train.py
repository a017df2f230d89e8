#!/usr/bin/python3
"""Train the long-context byte-level model of issue 19 (tools/train/model.py).

Data: the corpus of build_corpus.py (train.txt; heldout.txt only for evaluation), with the
synthetic tasks of tasks.py mixed in. Each batch is a pure function of (seed, step).
Schedule: AdamW, linear warm-up, constant learning rate, then a linear decay over the last
--decay-frac of the steps (warmup-stable-decay). With --total-steps auto the decay starts
when the --time-budget, at the measured step time, leaves only that fraction; the chosen
steps are logged and saved, so `--total-steps N --decay-start S` replays the same schedule.
Curriculum: --short-steps steps at --short-seq-len, then --seq-len.

Resumable: OUT/ckpt.pt holds model, optimizer, RNG states, step, tokens seen, schedule and
elapsed time; a run with the same --out continues from it. Logs: OUT/loss.csv (step,
tokens, seq_len, lr, train loss, wall time, tokens/s), OUT/evals.csv (held-out loss and
dense passkey accuracy at 1k/2k/4k/8k on fresh held-out prompts), OUT/model.bin (+ .sha256,
.json) exported every --export-every seconds and at the end.

  python3 tools/train/train.py --corpus-dir CORPUS --out OUT --device cuda --time-budget 1000
  /usr/bin/python3 tools/train/train.py --smoke --out /tmp/smoke      # CPU, < 60 s
"""
import argparse
import csv
import json
import os
import queue
import random
import sys
import threading
import time

T_START = time.time()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import export  # noqa: E402
from evaluate import answer_correct, autocast_for, format_table, heldout_loss, passkey_table  # noqa: E402
from export import load_checkpoint  # noqa: E402
from model import ModelConfig, Transformer  # noqa: E402
from tasks import DEFAULT_MIX, Text, make_batch, passkey_prompts  # noqa: E402

EVAL_SEED = 20240519  # seed of the fresh evaluation prompts (never a training seed)
DEPTHS = [round(0.1 * i, 1) for i in range(1, 10)]


def log(msg):
    print(f"[{time.time() - T_START:7.1f}s] {msg}", flush=True)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus-dir", help="folder with train.txt and heldout.txt (build_corpus.py)")
    ap.add_argument("--out", required=True, help="run folder: checkpoint, logs, exported model")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--smoke", action="store_true", help="a few tiny CPU steps of the whole pipeline")
    ap.add_argument("--time-budget", type=float, default=0.0,
                    help="seconds from process start: checkpoint, export and exit before then")
    ap.add_argument("--reserve", type=float, default=60.0,
                    help="seconds of the budget kept for the final checkpoint, export and evaluation")
    ap.add_argument("--seq-len", type=int, default=8192)
    ap.add_argument("--short-seq-len", type=int, default=2048)
    ap.add_argument("--short-steps", type=int, default=500)
    ap.add_argument("--batch-tokens", type=int, default=262144)
    ap.add_argument("--micro-tokens", type=int, default=131072)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.02)
    ap.add_argument("--warmup-steps", type=int, default=100)
    ap.add_argument("--total-steps", default="auto", help="an integer, or auto (needs --time-budget)")
    ap.add_argument("--decay-start", type=int, default=None, help="with an integer --total-steps")
    ap.add_argument("--decay-frac", type=float, default=0.25)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--mix", default=",".join(f"{k}={v}" for k, v in DEFAULT_MIX.items()))
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--eval-per-cell", type=int, default=1, help="prompts per length x depth in periodic checks")
    ap.add_argument("--final-per-cell", type=int, default=20)
    ap.add_argument("--eval-lengths", default="1024,2048,4096,8192")
    ap.add_argument("--ckpt-every", type=float, default=240.0, help="seconds")
    ap.add_argument("--export-every", type=float, default=240.0, help="seconds")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (torch >= 2)")
    ap.add_argument("--init-from", help="exported .bin to start from when OUT has no checkpoint "
                                        "(fresh optimizer; step and tokens from its .json)")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    ap.add_argument("--no-prefetch", action="store_true")
    ap.add_argument("--stop-after", type=int, default=0,
                    help="stop (checkpoint, export) after this many steps in this process: tests resuming")
    a = ap.parse_args(argv)
    if a.smoke:
        a.device = "cpu"
        a.seq_len, a.short_seq_len, a.short_steps = 512, 256, 3
        a.batch_tokens, a.micro_tokens = 2048, 1024
        a.total_steps, a.decay_frac, a.warmup_steps = "8", 0.25, 2
        a.log_every, a.eval_every, a.final_per_cell = 2, 4, 1
        a.eval_lengths = "384,512"
        a.no_prefetch = True
    return a


def smoke_config():
    return ModelConfig(dim=64, hidden_dim=176, n_layers=2, n_heads=4, n_kv_heads=1, seq_len=512)


def load_texts(a):
    if a.corpus_dir:
        return Text.load(os.path.join(a.corpus_dir, "train.txt")), Text.load(os.path.join(a.corpus_dir, "heldout.txt"))
    if not a.smoke:
        sys.exit("--corpus-dir is required (only --smoke has a built-in corpus)")
    # Smoke corpus: Debian's base-files licenses, two of them held out.
    d = "/usr/share/common-licenses"
    names = sorted(n for n in os.listdir(d) if os.path.isfile(os.path.join(d, n)))
    held = {"Apache-2.0", "MPL-2.0"}
    tr = b"\n\n".join(open(os.path.join(d, n), "rb").read() for n in names if n not in held)
    ho = b"\n\n".join(open(os.path.join(d, n), "rb").read() for n in sorted(held))
    clean = lambda s: bytes(c for c in s if c == 10 or 32 <= c < 127)  # noqa: E731
    return Text(clean(tr)), Text(clean(ho))


def parse_mix(s):
    return {k: float(v) for k, v in (kv.split("=") for kv in s.split(","))}


class Schedule:
    def __init__(self, a, state):
        self.peak, self.min_frac, self.a = a.lr, a.min_lr_frac, a
        self.warmup = a.warmup_steps
        self.warmup_start = state.get("warmup_start", 0)
        self.total = state.get("total_steps")
        self.decay_start = state.get("decay_start")
        if a.total_steps != "auto":  # an explicit schedule wins over the checkpoint's
            self.total = int(a.total_steps)
            self.decay_start = a.decay_start if a.decay_start is not None else \
                int(round(self.total * (1 - a.decay_frac)))

    def lr(self, step):
        w = step - self.warmup_start
        if w < self.warmup:
            return self.peak * (w + 1) / self.warmup
        if self.decay_start is None or step < self.decay_start:
            return self.peak
        frac = (step - self.decay_start) / max(1, self.total - self.decay_start)
        return self.peak * (self.min_frac + (1 - self.min_frac) * max(0.0, 1 - frac))

    def maybe_plan(self, step, time_left, step_time):
        """auto: start the decay once the steps that fit in time_left are decay_frac of all."""
        if self.total is not None or step_time <= 0:
            return False
        remaining = int(time_left / step_time)
        if remaining <= self.a.decay_frac * (step + remaining):
            self.decay_start, self.total = step, step + max(1, remaining)
            return True
        return False


class Prefetcher:
    """Builds the batches of steps start, start+1, ... in a background thread."""

    def __init__(self, fn, start, enabled):
        self.fn, self.enabled = fn, enabled
        self.next_step = start
        if enabled:
            self.q = queue.Queue(maxsize=3)
            self.t = threading.Thread(target=self._run, args=(start,), daemon=True)
            self.t.start()

    def _run(self, step):
        while True:
            self.q.put((step, self.fn(step)))
            step += 1

    def get(self, step):
        if not self.enabled:
            return self.fn(step)
        s, batch = self.q.get()
        assert s == step, (s, step)
        return batch


def save_checkpoint(path, model, opt, sched, step, tokens, elapsed, a, cfg):
    state = {
        "model": model.state_dict(), "optimizer": opt.state_dict(), "config": cfg.to_dict(),
        "step": step, "tokens_seen": tokens, "elapsed_s": elapsed, "args": vars(a),
        "total_steps": sched.total, "decay_start": sched.decay_start, "warmup_start": sched.warmup_start,
        "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
    }
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


def git_commit():
    c = os.environ.get("SPARQ_TRAIN_COMMIT")
    if c:
        return c
    try:
        import subprocess
        return subprocess.run(["git", "-C", HERE, "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except Exception:
        return None


def run_eval(model, heldout, a, lengths, per_cell, device, batch_size):
    prompts = passkey_prompts(heldout, lengths, DEPTHS, per_cell, EVAL_SEED)
    correct = answer_correct(model, prompts, device, batch_size=batch_size)
    hl = heldout_loss(model, heldout, device, n_windows=8 if not a.smoke else 2,
                      length=min(a.seq_len, 8192) if not a.smoke else 256)
    return {"heldout": hl, "passkey": passkey_table(prompts, correct)}


def main(argv=None):
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)
    dev = torch.device(a.device)
    is_cuda = dev.type == "cuda"
    if is_cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    deadline = T_START + a.time_budget - a.reserve if a.time_budget > 0 else float("inf")
    if a.total_steps == "auto" and a.time_budget <= 0:
        sys.exit("--total-steps auto needs --time-budget")
    mix = parse_mix(a.mix)
    train_text, heldout = load_texts(a)
    log(f"train text {len(train_text.data) / 1e6:.1f} MB, held-out {len(heldout.data) / 1e6:.2f} MB; "
        f"torch {torch.__version__}, device {torch.cuda.get_device_name() if is_cuda else 'cpu'}")

    cfg = smoke_config() if a.smoke else ModelConfig(seq_len=a.seq_len)
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    random.seed(a.seed)
    model = Transformer(cfg)
    model.init_weights(torch.Generator().manual_seed(a.seed))
    ckpt_path = os.path.join(a.out, "ckpt.pt")
    state = {}
    if os.path.exists(ckpt_path):
        state = load_checkpoint(ckpt_path)
        model.load_state_dict(state["model"])
        log(f"resumed from {ckpt_path} at step {state['step']}, {state['tokens_seen'] / 1e6:.1f} M tokens")
    elif a.init_from:
        src = export.read_model(a.init_from)
        model.load_state_dict(src.state_dict())
        meta_path = os.path.splitext(a.init_from)[0] + ".json"
        meta = json.load(open(meta_path)) if os.path.exists(meta_path) else {}
        state = {"step": meta.get("steps", 0), "tokens_seen": meta.get("tokens_seen", 0),
                 "elapsed_s": meta.get("train_wall_s", 0.0), "warmup_start": meta.get("steps", 0)}
        log(f"initialised from {a.init_from} (step {state['step']}), fresh optimizer")
    model.to(dev)
    n_params = model.num_params()
    log(f"model: {n_params:,} parameters, config {cfg.to_dict()}")

    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (decay if p.dim() >= 2 and "tok_embeddings" not in n else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": a.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    extra = {"fused": True} if is_cuda and "fused" in torch.optim.AdamW.__init__.__code__.co_varnames else {}
    opt = torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, 0.95), eps=1e-8, **extra)
    if "optimizer" in state:
        opt.load_state_dict(state["optimizer"])
        rng = state.get("rng", {})
        if "torch" in rng:
            torch.set_rng_state(rng["torch"])
            np.random.set_state(rng["numpy"])
            random.setstate(rng["python"])
            if is_cuda and rng.get("cuda") is not None:
                torch.cuda.set_rng_state_all(rng["cuda"])
    sched = Schedule(a, state)
    step, tokens = state.get("step", 0), state.get("tokens_seen", 0)
    elapsed0 = state.get("elapsed_s", 0.0)
    t_run0 = time.time()

    fwd = model
    if a.compile and hasattr(torch, "compile") and is_cuda:
        fwd = torch.compile(model, dynamic=False)
        log("torch.compile on (falls back to eager if the first step fails)")

    def seq_for(s):
        return a.short_seq_len if s < a.short_steps else a.seq_len

    def batch_fn(s):
        n = seq_for(s)
        toks, ws = make_batch(a.seed, s, train_text, a.batch_tokens // n, n + 1, mix)
        return toks, ws

    pre = Prefetcher(batch_fn, step, enabled=not a.no_prefetch)
    micro_tokens = a.micro_tokens
    lengths = [int(x) for x in a.eval_lengths.split(",")]
    eval_bs = 16 if is_cuda else 1

    loss_path, eval_path = os.path.join(a.out, "loss.csv"), os.path.join(a.out, "evals.csv")
    new_loss = not os.path.exists(loss_path)
    flog = open(loss_path, "a", newline="")
    wlog = csv.writer(flog)
    if new_loss:
        wlog.writerow(["step", "tokens", "seq_len", "lr", "train_loss_weighted", "train_ce", "wall_s", "tok_per_s"])
    new_eval = not os.path.exists(eval_path)
    feval = open(eval_path, "a", newline="")
    weval = csv.writer(feval)
    if new_eval:
        weval.writerow(["step", "tokens", "wall_s", "heldout_loss", "heldout_bpb"] + [f"passkey_{L}" for L in lengths])

    export_path = os.path.join(a.out, "model.bin")
    last_ckpt = last_export = time.time()
    ema_step, steps_timed, last_seq = 0.0, 0, None
    t_last = time.time()
    eval_time, n_evals = 0.0, 0
    win_t, win_tok, win_loss, win_ce, win_n = time.time(), 0, 0.0, 0.0, 0
    history = []  # (step, weighted loss, ce) of recent logs
    stop_reason = "total steps reached"
    compiled_ok = None

    def wall():
        return elapsed0 + time.time() - t_run0

    def do_export(final_eval=None):
        digest = export.write_model(model.state_dict(), cfg, export_path, "bf16")
        meta = {
            "format": "SPQLM v2, bf16", "file": os.path.basename(export_path), "sha256": digest,
            "bytes": os.path.getsize(export_path), "config": cfg.to_dict(), "params": n_params,
            "steps": step, "tokens_seen": tokens, "train_wall_s": round(wall(), 1),
            "schedule": {"lr": a.lr, "warmup_steps": a.warmup_steps, "warmup_start": sched.warmup_start,
                         "decay_start": sched.decay_start, "total_steps": sched.total,
                         "short_steps": a.short_steps, "short_seq_len": a.short_seq_len, "seq_len": a.seq_len,
                         "batch_tokens": a.batch_tokens},
            "final_train_loss": history[-1] if history else None, "mix": mix, "seed": a.seed,
            "git_commit": git_commit(), "torch": torch.__version__,
            "device": torch.cuda.get_device_name() if is_cuda else "cpu", "command": " ".join(sys.argv),
        }
        if final_eval:
            meta.update(final_eval)
        tmp = os.path.splitext(export_path)[0] + ".json.tmp"
        with open(tmp, "w") as f:
            json.dump(meta, f, indent=1)
        os.replace(tmp, os.path.splitext(export_path)[0] + ".json")
        return digest

    model.train()
    while True:
        if sched.total is not None and step >= sched.total:
            break
        n = seq_for(step)
        if n != last_seq:
            steps_timed, last_seq = 0, n
        now = time.time()
        if steps_timed >= 3 and n == a.seq_len:
            left = deadline - now - (eval_time / max(1, n_evals)) * 2
            if sched.maybe_plan(step, left, ema_step):
                log(f"schedule: decay from step {sched.decay_start} to {sched.total} "
                    f"(step time {ema_step:.3f} s, {left:.0f} s left)")
        if a.stop_after and step - state.get("step", 0) >= a.stop_after:
            stop_reason = "--stop-after"
            break
        if now + 1.5 * (ema_step if steps_timed else 0) > deadline:
            stop_reason = "time budget"
            break
        toks, ws = pre.get(step)
        for g in opt.param_groups:
            g["lr"] = sched.lr(step)
        x_all = torch.from_numpy(toks)
        w_all = torch.from_numpy(ws)
        if is_cuda:
            x_all, w_all = x_all.pin_memory().to(dev, non_blocking=True), w_all.pin_memory().to(dev, non_blocking=True)
        x_all = x_all.long()
        wsum = float(ws[:, 1:].sum())
        while True:
            try:
                opt.zero_grad(set_to_none=True)
                mb = max(1, micro_tokens // n)
                tot_w = torch.zeros((), device=dev)
                tot_ce = torch.zeros((), device=dev)
                for i in range(0, x_all.shape[0], mb):
                    x, y, w = x_all[i:i + mb, :-1], x_all[i:i + mb, 1:], w_all[i:i + mb, 1:]
                    with autocast_for(dev):
                        logits = fwd(x)
                    ce = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1),
                                         reduction="none")
                    loss = (ce * w.reshape(-1)).sum() / wsum
                    loss.backward()
                    tot_w += loss.detach()
                    tot_ce += ce.detach().sum()
                if compiled_ok is None:
                    compiled_ok = fwd is not model
                break
            except Exception as e:  # noqa: BLE001
                oom = "out of memory" in str(e).lower()
                if fwd is not model and compiled_ok is None and not oom:
                    log(f"torch.compile failed ({type(e).__name__}: {str(e)[:300]}); continuing eager")
                    fwd, compiled_ok = model, False
                elif oom and micro_tokens > n:
                    micro_tokens //= 2
                    log(f"out of memory: micro-batch now {micro_tokens} tokens")
                else:
                    raise
                opt.zero_grad(set_to_none=True)
                if is_cuda:
                    torch.cuda.empty_cache()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), a.grad_clip)
        opt.step()
        step += 1
        tokens += x_all.shape[0] * n
        # Step time as the wall time between step ends: the host runs ahead of the GPU by a
        # bounded queue, so in steady state this is the GPU's pace.
        t_now = time.time()
        dt, t_last = t_now - t_last, t_now
        steps_timed += 1
        if steps_timed > 2:
            ema_step = dt if ema_step == 0 else 0.9 * ema_step + 0.1 * dt
        win_tok += x_all.shape[0] * n
        win_loss = win_loss + tot_w
        win_ce = win_ce + tot_ce / (x_all.shape[0] * n)
        win_n += 1
        if step % a.log_every == 0 or step == 1:
            if is_cuda:
                torch.cuda.synchronize()
            win_loss, win_ce = float(win_loss), float(win_ce)
            el = time.time() - win_t
            row = [step, tokens, n, f"{sched.lr(step - 1):.3e}", f"{win_loss / win_n:.4f}", f"{win_ce / win_n:.4f}",
                   f"{wall():.1f}", f"{win_tok / max(el, 1e-9):.0f}"]
            wlog.writerow(row)
            flog.flush()
            history.append({"step": step, "loss_weighted": round(win_loss / win_n, 4),
                            "ce": round(win_ce / win_n, 4)})
            history = history[-50:]
            log(f"step {step} tok {tokens / 1e6:.1f}M seq {n} lr {sched.lr(step - 1):.2e} "
                f"loss {win_loss / win_n:.4f} ce {win_ce / win_n:.4f} gnorm {float(gn):.2f} "
                f"{win_tok / max(el, 1e-9) / 1e3:.0f}k tok/s")
            win_t, win_tok, win_loss, win_ce, win_n = time.time(), 0, 0.0, 0.0, 0
            t_last = time.time()
        if step % a.eval_every == 0:
            te = time.time()
            ev = run_eval(model, heldout, a, lengths, a.eval_per_cell, dev, eval_bs)
            weval.writerow([step, tokens, f"{wall():.1f}", f"{ev['heldout']['loss']:.4f}",
                            f"{ev['heldout']['bpb']:.4f}"] +
                           [f"{ev['passkey'][str(L)]['correct']}/{ev['passkey'][str(L)]['total']}" for L in lengths])
            feval.flush()
            eval_time += time.time() - te
            n_evals += 1
            log(f"eval step {step}: held-out loss {ev['heldout']['loss']:.4f} (bpb {ev['heldout']['bpb']:.3f}) "
                f"passkey {format_table(ev['passkey'])} ({time.time() - te:.1f} s)")
            win_t, t_last = win_t + (time.time() - te), time.time()  # pauses don't count as steps
        if time.time() - last_export > a.export_every:
            te = time.time()
            do_export()
            last_export = time.time()
            log(f"exported {export_path} at step {step}")
            win_t, t_last = win_t + (time.time() - te), time.time()
        if time.time() - last_ckpt > a.ckpt_every:
            te = time.time()
            save_checkpoint(ckpt_path, model, opt, sched, step, tokens, wall(), a, cfg)
            last_ckpt = time.time()
            log(f"checkpoint at step {step}")
            win_t, t_last = win_t + (time.time() - te), time.time()

    log(f"stopped: {stop_reason} at step {step}, {tokens / 1e6:.1f} M tokens, {wall():.0f} s of training")
    save_checkpoint(ckpt_path, model, opt, sched, step, tokens, wall(), a, cfg)
    do_export()
    # Final dense evaluation on fresh held-out prompts, then the exported file against it.
    te = time.time()
    prompts = passkey_prompts(heldout, lengths, DEPTHS, a.final_per_cell, EVAL_SEED + 1)
    correct = answer_correct(model, prompts, dev, batch_size=eval_bs)
    table = passkey_table(prompts, correct)
    hl = heldout_loss(model, heldout, dev, n_windows=32 if not a.smoke else 2,
                      length=a.seq_len if not a.smoke else 256)
    log(f"final: held-out loss {hl['loss']:.4f} (bpb {hl['bpb']:.3f}), passkey {format_table(table)} "
        f"({time.time() - te:.1f} s)")
    spec = {"lengths": lengths if is_cuda else lengths[:2], "per_cell": 1, "seed": EVAL_SEED + 2,
            "hl_windows": 4, "hl_length": 2048 if not a.smoke else 256}
    sub = (heldout, dev, spec["lengths"], spec["per_cell"], spec["seed"], spec["hl_windows"], spec["hl_length"],
           eval_bs)
    ref = export.evaluate_subset(model, *sub)
    test = export.evaluate_subset(export.read_model(export_path).to(dev), *sub)
    ok, lines = export.compare(ref, test)
    for ln in lines:
        log("check: " + ln)
    log("check: exported file matches the in-memory model" if ok else "check: MISMATCH")
    final = {"final_eval": {"heldout": hl, "passkey": table, "prompt_seed": EVAL_SEED + 1,
                            "per_cell": a.final_per_cell, "depths": DEPTHS},
             "check": {"spec": spec, "reference": ref, "exported": test, "ok": ok},
             "stop_reason": stop_reason, "compiled": bool(compiled_ok)}
    do_export(final)
    log(f"done: {export_path} ({os.path.getsize(export_path)} bytes)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
