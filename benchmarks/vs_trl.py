"""Side by side: mentor's language-model distillation against TRL's GKD trainer (CPU).

Both sides distil the same teacher into the same student on the same data with the same
objective, on CPU, float32:

* models: GPT-2 configurations built with ``transformers.GPT2Config`` / ``GPT2LMHeadModel``
  (no dropout, so a step is deterministic), student 2 layers × 64, teacher 2 layers × 128;
  built once from a seed and deep-copied into every run of both sides;
* data: random token sequences of one length, the first quarter a prompt, the rest the
  completion; only completion tokens count (mentor: ``TokenData.target``; TRL: ``labels`` =
  the ids with ``-100`` on the prompt). Held-out rows of the same kind for validation;
* objective: GKD's generalized JSD at ``--beta`` (0.5), off-policy (TRL ``lmbda=0``,
  ``seq_kd=False``: the dataset completions only, nothing is sampled), temperature 1;
* optimizer: ``torch.optim.Adam`` at lr 3e-3 (mentor's ``distill_lm`` default; TRL gets the
  same optimizer through ``optimizers=``), constant rate, no weight decay, no gradient
  clipping (TRL ``max_grad_norm=0``), batch ``--batch``;
* the same batches: TRL reads its dataset sequentially (``train_sampling_strategy=
  "sequential"``) and that dataset is the rows mentor's ``distill_lm`` drew, in its order.

mentor runs the real ``mentor.lm.distill_lm(student, teacher, TokenData(ids, target),
regime="off_policy", divergence="jsd", beta=..., chunk_size=...)``; TRL the real
``trl.experimental.gkd.GKDTrainer`` (offline: a word-level tokenizer built here, pre-tokenized
rows and a stacking collator; ``report_to=[]``, ``use_cpu=True``, ``bf16=False``: TRL's
configs default to bf16, which would not be the same dtype; ``gradient_checkpointing=False``:
TRL's configs default to recomputing the model's activations, which mentor does not do here,
so it would trade TRL's step time for memory).

β mapping. Both put ``M = β p_t + (1-β) p_s`` (β is the TEACHER's weight in the mixture: TRL
mixes ``teacher_log_probs + log(β)`` with ``student_log_probs + log1p(-β)``) and both take
``β KL(p_t ‖ M) + (1-β) KL(p_s ‖ M)``; so the same β on both sides, and
``mentor = TRL / (β(1-β))`` for 0 < β < 1 (mentor divides so that the value is continuous in β),
``mentor = TRL`` at β = 0 (forward KL) and β = 1 (reverse KL). Reduction: TRL's ``batchmean``
with labels (and the trainer's ``num_items_in_batch``, counted over ``labels[:, 1:]``) is the
sum over the positions whose shifted label is not ``-100`` divided by their number: a mean per
completion token, the same as mentor's ``reduction="mean"`` over its mask.

Measured:

1. Loss equality: on ``--check-rows`` rows, mentor's ``token_divergence(kind="jsd")`` ×
   β(1-β) against TRL's ``GKDTrainer.generalized_jsd_loss`` at β in {0, 0.1, 0.5, 0.9, 1},
   values and gradients with respect to the student's logits, in float64 (the definitions:
   must agree to 1e-8) and float32 (rounding; each also against the float64 value); then the
   first optimizer step's loss of the two real training runs (same weights, same batch,
   float32). Fails (exit 1) above 1e-8 (float64) or 1e-3 (float32) relative difference.
   Also timed: the loss alone (forward and backward on one batch's fixed logits) for mentor
   with ``chunk_size``, mentor in one pass, and TRL.
2. Step time: each run takes ``--warmup`` + ``--steps`` + 1 optimizer steps; a forward
   pre-hook on the student stamps the time of every student forward pass (one per step, the
   same instrument on both sides), so each interval is one whole step (batch, student
   forward, teacher forward, loss, backward, optimizer step, the loop's own work); the median
   of the timed intervals. ``--reps`` rounds, alternating which side runs first; the RATIO is
   the median over rounds of mentor / TRL.
3. Peak memory at ``--mem-vocab`` (32,000) × ``--mem-seq`` (1,024), batch ``--mem-batch``
   (1): each side trains 2 steps in a FRESH subprocess (this script with ``--child``) with a
   2 × 64 student and teacher, after a tiny warm-up run of the same path; the extra peak RSS
   of the run (the peak RSS is reset with ``/proc/self/clear_refs`` once models and data are
   built, then ``VmHWM`` minus ``VmRSS`` at that point; ``ru_maxrss`` where the reset is not
   allowed) is compared: everything the training call allocates counts (optimizer state,
   the trainer's own set-up). Run with ``MALLOC_MMAP_THRESHOLD_=65536`` (large blocks
   returned at free: the RSS peak is the peak of live tensors; the RATIO) and, in the full
   mode, with glibc's default malloc (a RESULT line), as in ``benchmarks/lm_memory.py``.
   mentor uses ``chunk_size`` (``--chunk-size``, 128): its loss runs over chunks of positions
   under activation checkpointing; both sides still hold the full student and teacher logits
   (the GPT-2 head computes them).
4. Validation after the same steps: the students of the first round, on held-out rows, the
   mean per-completion-token JSD to the teacher (mentor's convention; TRL's is × β(1-β)),
   computed by one function for both, and the largest weight difference between the two
   students (same batches, and Adam is invariant to the gradient's scale up to its eps and
   float rounding: the students should agree closely, not bit for bit).
5. On-policy step (``--no-on-policy`` skips it): every step samples the batch's completions
   from the student with the KV cache (Hugging Face ``generate``), then trains on them with
   the same JSD. mentor: ``distill_lm(regime="on_policy", lam=1.0, divergence="jsd",
   sample_temperature=T)`` (``chunk_size`` ``--op-chunk-size``, default None: one pass);
   TRL: ``GKDTrainer`` with ``lmbda=1`` (always student-generated), ``temperature=T``,
   ``max_new_tokens=N``, ``seq_kd=False`` and ``gradient_checkpointing=False`` (TRL's
   SFTConfig defaults it to True, which also turns its generation's KV cache off:
   ``use_cache=False``). Models: GPT-2 2x64 student and 2x128 teacher of ``--op-vocab``
   (8,000) WITHOUT an eos id, and TRL's tokenizer has no eos token either (the Trainer copies
   a tokenizer's eos into the model's generation config), so no row stops early: rows are a
   ``--op-prompt`` (64) token prompt and an ``N``-token completion (``--op-new``, 64 and 256;
   mentor generates up to the batch's longest completion, i.e. N; TRL's ``max_new_tokens``).
   Both sides then call ``generate`` with do_sample=True, temperature T (1), top_k=0,
   top_p=1 (the full distribution), use_cache=True, no eos: the script prints the EFFECTIVE
   settings of each side's first call (its generation config merged with the model's, as
   ``generate`` merges them) and checks that every call appended exactly N tokens to
   ``--op-batch`` rows. Same prompts in the same order (TRL reads, sequentially, the prompts
   mentor's run drew), same steps, Adam at the same rate. Timed by a global optimizer-step
   hook (each interval one whole step: sampling, teacher and student forward, loss,
   backward, optimizer, the loop), wall clock and process CPU time, median of each run's
   ``--op-steps`` after ``--op-warmup`` + 1; ``generate`` itself is timed by a wrapper (the
   same on both sides). tokens/s = batch x N (generated, then trained on) / step time.
   ``--reps`` rounds alternating which side runs first (mentor first in the first: its
   prompts are TRL's). The samples differ (each side's own RNG), so losses are not compared
   beyond their mean. Then the sampling alone, interleaved over ``--op-gen-reps`` rounds on one
   student: mentor's ``complete_data`` against TRL's ``generate_on_policy_outputs`` with the
   generation config GKDTrainer builds (where a step's difference comes from).

Machine-readable lines, last (the float64 check first, then the ratios):

    RESULT vs_trl_loss_rel_diff_float64 / _float32 <largest relative difference>
    RESULT vs_trl_step_s_mentor / _trl <median step seconds>
    RESULT vs_trl_loss_only_ratio <the loss alone: mentor (chunked) / TRL>
    RESULT vs_trl_val_jsd_mentor / _trl <validation JSD>
    LOSS_EQUAL mentor jsd x beta(1-beta) == TRL generalized_jsd_loss (...)
    RATIO vs_trl_step <median over rounds of mentor / TRL step time>    (target <= 0.8)
    RESULT vs_trl_on_policy_tokens_per_s_mentor_N<N> / _trl_N<N> <tokens per second>
    RESULT vs_trl_on_policy_step_ratio_N<N> / _cpu_ratio_N<N> <mentor / TRL step, wall / CPU>
    RESULT vs_trl_on_policy_sampling_only_ratio_N<N> <mentor / TRL, one batch's sampling alone>
    RATIO vs_trl_on_policy_step <mentor / TRL on-policy step time: the largest over the N run>
    RESULT vs_trl_memory_glibc_default <ratio with glibc's default malloc>   (full mode)
    RATIO vs_trl_memory <mentor extra peak RSS / TRL's>                 (target <= 0.5)

Run:   PYTHONPATH=src python benchmarks/vs_trl.py           (V 32,000: steps at L 512 batch 2,
                                                             memory at L 1,024 batch 1;
                                                             on-policy V 8,000, prompt 64,
                                                             N 64 and 256, batch 4; 1
                                                             thread; ~8-14 min)
       PYTHONPATH=src python benchmarks/vs_trl.py --quick   (V 2,000 x L 64 steps, V 8,000 x
                                                             L 256 memory, on-policy V 2,000
                                                             prompt 16 N 16: < 60 s; a smoke
                                                             run)
Needs ``trl`` (``pip install -e .[bench]``).
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("MENTOR_CPU", "1")  # before mentor is imported: its Accelerator's device
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded: models from configs
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

BETAS = (0.0, 0.1, 0.5, 0.9, 1.0)
# largest relative difference allowed: float64 (the same definition), float32 (rounding: a sum
# over the vocabulary of terms that nearly cancel when p_s is close to p_t)
TOLERANCE = {"float64": 1e-8, "float32": 1e-3}
SIDES = ("mentor", "trl")
ALLOCATORS = {"mmap": {"MALLOC_MMAP_THRESHOLD_": "65536"}, "default": {}}
LR = 3e-3


# ------------------------------------------------------------------------------ shared parts

def gpt2(vocab: int, length: int, layers: int, width: int, seed: int, eos: int | None = 1):
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=vocab, n_positions=length, n_layer=layers, n_embd=width,
                     n_head=max(1, width // 64), resid_pdrop=0.0, embd_pdrop=0.0,
                     attn_pdrop=0.0, bos_token_id=eos, eos_token_id=eos)
    return GPT2LMHeadModel(cfg)


def models(vocab: int, length: int, student_width: int, teacher_width: int, seed: int,
           eos: int | None = 1):
    return (gpt2(vocab, length, 2, student_width, seed, eos),
            gpt2(vocab, length, 2, teacher_width, seed + 1, eos).eval())


def token_rows(n: int, vocab: int, length: int, seed: int):
    """``n`` random sequences; the first quarter is the prompt, the rest the completion."""
    from mentor.lm import TokenData
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, vocab, (n, length), generator=g)
    target = torch.zeros(n, length, dtype=torch.bool)
    target[:, length // 4:] = True
    return TokenData(ids, target)


def trl_labels(data):
    labels = data.ids.clone()
    labels[~data.target] = -100
    return labels


def tokenizer(vocab: int, eos: bool = True):
    """A word-level tokenizer of ``vocab`` entries built here (GKDTrainer wants one for its
    generation settings; nothing is tokenized: the rows are ids already). ``eos=False``: no
    end-of-sequence token (the Trainer copies the tokenizer's eos into the model's generation
    config, and a sampled eos would end a row early)."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast
    tok = Tokenizer(WordLevel({f"t{i}": i for i in range(vocab)}, unk_token="t0"))
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="t0",
                                   **({"eos_token": "t1"} if eos else {}))


class Stamps:
    """A forward pre-hook on the student: the time of every forward pass."""

    def __init__(self, model):
        self.times: list[float] = []
        self.handle = model.register_forward_pre_hook(self._hook)

    def _hook(self, *_):
        self.times.append(time.perf_counter())

    def intervals(self, skip: int) -> list[float]:
        t = self.times
        return [b - a for a, b in zip(t[skip:], t[skip + 1:])]


def run_mentor(student, teacher, train, *, beta, steps, batch, chunk_size, seed=0):
    """The real ``distill_lm`` path; returns (trained student, per-step losses, drawn rows)."""
    from mentor.lm import distill_lm
    from mentor.lm.signals import LocalTeacher

    drawn = []

    class Recording(LocalTeacher):  # notes the rows of every batch (TRL then reads the same)
        def signal(self, ids, rows=None, *rest, **kw):
            drawn.append(rows)
            return super().signal(ids, rows, *rest, **kw)

    res = distill_lm(student, Recording(teacher), train, regime="off_policy", divergence="jsd",
                     beta=beta, steps=steps, batch_size=batch, lr=LR, chunk_size=chunk_size,
                     eval_every=steps, seed=seed)
    return res.model, res.losses, torch.cat(drawn)


def train_trl(student, teacher, ds, processing_class, *, steps, batch, seed, **gkd):
    """``GKDTrainer`` on the dataset ``ds`` in order, as both comparisons run it: plain Adam at
    ``LR``, constant rate, no clipping, no weight decay, fp32, no gradient checkpointing (like
    mentor: activations kept), on the CPU; ``gkd`` holds the comparison's own ``GKDConfig``
    fields (``lmbda``, ``beta``, ...). Returns (trained student, per-step losses)."""
    from transformers import PrinterCallback
    from trl.experimental.gkd import GKDConfig, GKDTrainer

    def collate(feats):
        return {k: torch.stack([f[k] for f in feats]) for k in feats[0]}

    losses = []

    class Trainer(GKDTrainer):  # keeps the step losses (detached: no extra sync)
        def compute_loss(self, *a, **kw):
            loss = super().compute_loss(*a, **kw)
            losses.append(loss.detach())
            return loss

    with tempfile.TemporaryDirectory() as out:
        args = GKDConfig(output_dir=out, per_device_train_batch_size=batch, max_steps=steps,
                         seq_kd=False, learning_rate=LR, lr_scheduler_type="constant",
                         warmup_steps=0, weight_decay=0.0, max_grad_norm=0.0,
                         train_sampling_strategy="sequential", report_to=[], use_cpu=True,
                         save_strategy="no", disable_tqdm=True, seed=seed,
                         dataloader_num_workers=0, bf16=False, fp16=False,
                         gradient_checkpointing=False, **gkd)
        tr = Trainer(model=student, teacher_model=teacher, args=args, train_dataset=ds,
                     data_collator=collate, processing_class=processing_class,
                     optimizers=(torch.optim.Adam(student.parameters(), lr=LR), None))
        tr.remove_callback(PrinterCallback)  # its end-of-run summary would go to stdout
        tr.train()
    return tr.model, [float(x) for x in losses]


def run_trl(student, teacher, train, rows, *, beta, steps, batch, seed=0):
    """The real ``GKDTrainer`` path on ``train``'s ``rows`` in order; returns (trained
    student, the first step's loss)."""
    from datasets import Dataset

    ids = train.ids[rows]
    ds = Dataset.from_dict({"input_ids": ids.tolist(),
                           "attention_mask": torch.ones_like(ids).tolist(),
                           "labels": trl_labels(train)[rows].tolist()}).with_format("torch")

    model, losses = train_trl(student, teacher, ds, tokenizer(teacher.config.vocab_size),
                              steps=steps, batch=batch, seed=seed, lmbda=0.0, beta=beta,
                              temperature=1.0, max_length=train.ids.shape[1])
    return model, losses[0]


def quiet():
    import transformers
    transformers.logging.set_verbosity_error()
    import logging
    logging.getLogger("trl").setLevel(logging.ERROR)  # GKD's lmbda=1 advice to migrate
    import warnings
    warnings.filterwarnings("ignore")


# ------------------------------------------------------------------------------ 1. loss equality

def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-30)


def check_losses(student, teacher, data, rows) -> tuple[float, float]:
    """(largest relative difference in float64, in float32) between mentor's jsd × β(1-β)
    and TRL's ``generalized_jsd_loss`` on the first ``rows`` rows, values and gradients."""
    from trl.experimental.gkd import GKDTrainer

    from mentor.losses.tokens import token_divergence
    ids, mask, labels = data.ids[:rows], data.target[:rows], trl_labels(data)[:rows]
    with torch.no_grad():
        zt32 = teacher(ids).logits[:, :-1]
        zs32 = student(ids).logits[:, :-1]
    worst = {torch.float64: 0.0, torch.float32: 0.0}
    print(f"loss equality on {rows} row(s): mentor's jsd x beta(1-beta) against TRL's "
          "generalized_jsd_loss, values and gradients w.r.t. the student's logits (rel diff "
          "float64 / float32; float32 also against the float64 value):")
    for beta in BETAS:
        scale = beta * (1 - beta) if 0 < beta < 1 else 1.0
        got = {}
        for dtype in (torch.float64, torch.float32):
            zs0, zt = zs32.to(dtype), zt32.to(dtype)
            zs_m = zs0.clone().requires_grad_()
            m = token_divergence(zs_m, zt, mask[:, 1:], kind="jsd", beta=beta,
                                 reduction="mean")
            (m * scale).backward()
            zs_t = zs0.clone().requires_grad_()
            t = GKDTrainer.generalized_jsd_loss(zs_t, zt, labels[:, 1:], beta=beta)
            t.backward()
            r = rel(m.item() * scale, t.item())
            g = ((zs_m.grad - zs_t.grad).abs().max() / zs_t.grad.abs().max()).item()
            worst[dtype] = max(worst[dtype], r, g)
            got[dtype] = (m.item(), t.item(), r, g)
        m64, t64, r64, g64 = got[torch.float64]
        m32, t32, r32, g32 = got[torch.float32]
        print(f"  beta {beta:.1f}: mentor {m64:.8f} (x beta(1-beta) = {m64 * scale:.8f})  TRL "
              f"{t64:.8f}  rel diff {r64:.1e} / {r32:.1e}, grad {g64:.1e} / {g32:.1e}; "
              f"float32 vs float64: mentor {rel(m32, m64):.1e}, TRL {rel(t32, t64):.1e}")
    return worst[torch.float64], worst[torch.float32]


def loss_only(student, teacher, data, batch, beta, chunk_size, reps) -> dict[str, float]:
    """Median seconds of the loss alone (forward and backward to the student's logits, on
    fixed logits of one batch): mentor chunked, mentor in one pass, TRL; interleaved."""
    from trl.experimental.gkd import GKDTrainer

    from mentor.losses.tokens import token_divergence
    ids, mask, labels = data.ids[:batch], data.target[:batch, 1:], trl_labels(data)[:batch, 1:]
    with torch.no_grad():
        zt, zs0 = teacher(ids).logits[:, :-1], student(ids).logits[:, :-1]
    fns = {
        f"mentor chunk_size={chunk_size}": lambda z: token_divergence(
            z, zt, mask, kind="jsd", beta=beta, chunk_size=chunk_size),
        "mentor one pass": lambda z: token_divergence(z, zt, mask, kind="jsd", beta=beta),
        "TRL": lambda z: GKDTrainer.generalized_jsd_loss(z, zt, labels, beta=beta),
    }
    times = {k: [] for k in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            z = zs0.clone().requires_grad_()
            t0 = time.perf_counter()
            fn(z).backward()
            times[name].append(time.perf_counter() - t0)
            del z
            gc.collect()
    return {k: statistics.median(v) for k, v in times.items()}


# ------------------------------------------------------------------------------ 3. memory child

def _status_mib(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB -> MiB
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> bool:
    """Reset the process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def child(args) -> int:
    import resource
    quiet()
    torch.set_num_threads(args.threads)

    def run(vocab, length, batch, steps):
        student, teacher = models(vocab, length, 64, 64, args.seed)
        train = token_rows(max(batch * steps, 4), vocab, length, args.seed)
        gc.collect()
        reset = _reset_peak()
        before = _status_mib("VmRSS") if reset else \
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if args.child == "mentor":
            run_mentor(student, teacher, train, beta=args.beta, steps=steps, batch=batch,
                       chunk_size=args.chunk_size)
        else:
            run_trl(student, teacher, train, torch.arange(batch * steps), beta=args.beta,
                    steps=steps, batch=batch)
        peak = _status_mib("VmHWM") if reset else \
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return before, peak, reset

    run(64, 16, 1, 1)  # warm-up: lazy imports and initialisation, tiny shapes
    gc.collect()
    before, peak, reset = run(args.mem_vocab, args.mem_seq, args.mem_batch, 2)
    print(json.dumps({"extra_mib": peak - before, "baseline_mib": before, "peak_mib": peak,
                      "peak_reset": reset}))
    return 0


def memory(args) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads),
           "MKL_NUM_THREADS": str(args.threads)}
    env.pop("MALLOC_MMAP_THRESHOLD_", None)
    res = {}
    for alloc, extra in ALLOCATORS.items():
        if alloc == "default" and args.mmap_only:
            continue
        for side in SIDES:
            proc = subprocess.run(
                [sys.executable, __file__, f"--child={side}", f"--beta={args.beta}",
                 f"--mem-vocab={args.mem_vocab}", f"--mem-seq={args.mem_seq}",
                 f"--mem-batch={args.mem_batch}", f"--chunk-size={args.chunk_size}",
                 f"--threads={args.threads}", f"--seed={args.seed}"],
                env={**env, **extra}, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                print(proc.stdout[-3000:] + proc.stderr[-3000:], file=sys.stderr)
                raise SystemExit(1)
            res[alloc, side] = json.loads(proc.stdout.strip().splitlines()[-1])
    return res


# ------------------------------------------------------------------------------ 4. validation

@torch.no_grad()
def val_jsd(student, teacher, val, beta, batch) -> float:
    """Mean per-completion-token JSD (mentor's convention) of ``student`` to ``teacher``."""
    from mentor.losses.tokens import token_divergence
    student.eval()
    total, count = 0.0, 0
    for i in range(0, len(val), batch):
        ids, mask = val.ids[i:i + batch], val.target[i:i + batch, 1:]
        zs, zt = student(ids).logits[:, :-1], teacher(ids).logits[:, :-1]
        total += token_divergence(zs, zt, mask, kind="jsd", beta=beta, reduction="sum").item()
        count += int(mask.sum())
    return total / count


# ------------------------------------------------------------------------------ 5. on-policy

GEN_KEYS = ("do_sample", "temperature", "top_k", "top_p", "use_cache", "max_new_tokens",
            "eos_token_id", "pad_token_id")


def prompt_rows(n: int, vocab: int, prompt: int, new: int, seed: int):
    """``n`` rows of a random ``prompt``-token prompt and a random ``new``-token completion
    (ids >= 2; no end-of-sequence id: no row stops early), as mentor's right-padded
    ``TokenData`` (``from_lists``, pad 0, ``eos_id=None``)."""
    from mentor.lm.token_data import from_lists
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, vocab, (n, prompt + new), generator=g)
    return from_lists(ids[:, :prompt].tolist(), ids[:, prompt:].tolist(), pad_id=0,
                      eos_id=None)


class StepStamps:
    """The wall-clock and process CPU time after every optimizer step (a global ``torch.optim``
    step post-hook: one per step on both sides, whatever the loop), so each interval is one
    whole step. The CPU time (one torch thread) is less sensitive to other load on a shared
    machine."""

    def __init__(self):
        from torch.optim.optimizer import register_optimizer_step_post_hook
        self.times: list[float] = []
        self.cpu: list[float] = []
        self.handle = register_optimizer_step_post_hook(self._hook)

    def _hook(self, *_):
        self.times.append(time.perf_counter())
        self.cpu.append(time.process_time())

    def intervals(self, skip: int, cpu: bool = False) -> list[float]:
        t = self.cpu if cpu else self.times
        return [b - a for a, b in zip(t[skip:], t[skip + 1:])]


class GenerateSpy:
    """Wraps ``model.generate`` (an instance attribute; removed by ``close``): the seconds of
    every call, its prompts, how many tokens it appended and the EFFECTIVE generation settings
    (the passed ``generation_config`` merged with the model's as ``generate`` merges them)."""

    def __init__(self, model):
        self.model, self.spans, self.prompts, self.new, self.settings = model, [], [], [], None
        inner = model.generate

        def generate(*a, **kw):
            ids = kw["input_ids"] if "input_ids" in kw else a[0]
            t0 = time.perf_counter()
            out = inner(*a, **kw)
            self.spans.append(time.perf_counter() - t0)
            seq = out.sequences if hasattr(out, "sequences") else out
            self.prompts.append(ids.detach().cpu().clone())
            self.new.append(seq.shape[1] - ids.shape[1])
            if self.settings is None:
                eff, _ = model._prepare_generation_config(kw.get("generation_config"))
                self.settings = {k: getattr(eff, k, None) for k in GEN_KEYS}
            return out

        model.generate = generate

    def close(self):
        del self.model.generate


def run_mentor_on_policy(student, teacher, train, *, beta, steps, batch, temperature,
                         chunk_size, seed=0):
    """The real ``distill_lm`` on-policy path: every step samples the batch's completions from
    the student (``lam=1``) and trains on them with the JSD; returns the per-step losses."""
    from mentor.lm import distill_lm
    res = distill_lm(student, teacher, train, regime="on_policy", lam=1.0, divergence="jsd",
                     beta=beta, sample_temperature=temperature, steps=steps, batch_size=batch,
                     lr=LR, chunk_size=chunk_size, eval_every=steps, seed=seed)
    return res.losses


def run_trl_on_policy(student, teacher, prompts, new, *, beta, steps, batch, temperature,
                      seed=0):
    """The real ``GKDTrainer`` with ``lmbda=1`` (every step generates with the student) on
    ``prompts`` in order (``prompts``/``prompt_attention_mask`` are what it generates from;
    ``input_ids``/``labels`` hold a placeholder completion of ``new`` tokens, replaced by the
    generated one). Returns the per-step losses."""
    from datasets import Dataset

    n, p = prompts.shape
    ids = torch.cat([prompts, torch.full((n, new), 2, dtype=prompts.dtype)], 1)
    labels = ids.clone()
    labels[:, :p] = -100
    ds = Dataset.from_dict({"prompts": prompts.tolist(),
                            "prompt_attention_mask": torch.ones_like(prompts).tolist(),
                            "input_ids": ids.tolist(),
                            "attention_mask": torch.ones_like(ids).tolist(),
                            "labels": labels.tolist()}).with_format("torch")

    return train_trl(student, teacher, ds, tokenizer(teacher.config.vocab_size, eos=False),
                     steps=steps, batch=batch, seed=seed, lmbda=1.0, beta=beta,
                     temperature=temperature, max_new_tokens=new, max_length=p + new)[1]


def on_policy(args, new: int) -> dict:
    """mentor's on-policy step against TRL's (``lmbda=1``) at ``new`` generated tokens: step
    time (median of each run's timed steps; ``--reps`` rounds, alternating which side runs
    first), its generation part, and the tokens per second."""
    v, p, b = args.op_vocab, args.op_prompt, args.op_batch
    total = args.op_warmup + args.op_steps + 1
    student0, teacher0 = models(v, p + new, 64, 128, args.seed, eos=None)
    train = prompt_rows(args.train_rows, v, p, new, args.seed)
    step = {s: [] for s in SIDES}
    cpu = {s: [] for s in SIDES}
    gen = {s: [] for s in SIDES}
    settings, losses, prompts = {}, {}, None
    for r in range(args.reps):
        order = SIDES if r % 2 == 0 else SIDES[::-1]
        if prompts is None:
            order = SIDES  # TRL reads the prompts mentor drew: mentor first in the first round
        for side in order:
            student, teacher = copy.deepcopy(student0), copy.deepcopy(teacher0)
            spy, stamps = GenerateSpy(student), StepStamps()
            try:
                if side == "mentor":
                    ls = run_mentor_on_policy(student, teacher, train, beta=args.beta,
                                              steps=total, batch=b,
                                              temperature=args.op_temperature,
                                              chunk_size=args.op_chunk_size or None,
                                              seed=args.seed)
                    prompts = torch.cat(spy.prompts)
                else:
                    ls = run_trl_on_policy(student, teacher, prompts, new, beta=args.beta,
                                           steps=total, batch=b,
                                           temperature=args.op_temperature, seed=args.seed)
            finally:
                stamps.handle.remove()
                spy.close()
            if len(stamps.times) != total or len(spy.spans) != total:
                raise RuntimeError(f"{side}: {len(stamps.times)} optimizer steps and "
                                   f"{len(spy.spans)} generate calls; expected {total} each")
            if set(spy.new) != {new} or any(len(x) != b for x in spy.prompts):
                raise RuntimeError(f"{side} generated {sorted(set(spy.new))} new tokens "
                                   f"(expected {new} every step) or not {b} rows")
            # stamp i ends step i + 1: the intervals after the first op_warmup are steps
            # op_warmup + 2 .. total, whose generate calls are spans[op_warmup + 1:]
            step[side].append(statistics.median(stamps.intervals(args.op_warmup)))
            cpu[side].append(statistics.median(stamps.intervals(args.op_warmup, cpu=True)))
            gen[side].append(statistics.median(spy.spans[args.op_warmup + 1:]))
            settings.setdefault(side, spy.settings)
            losses.setdefault(side, ls)
            gc.collect()
    tok = b * new
    res = {"new": new, "step": step, "gen": gen, "settings": settings, "losses": losses,
           "ratio": statistics.median(m / t for m, t in zip(step["mentor"], step["trl"])),
           "cpu_ratio": statistics.median(m / t for m, t in zip(cpu["mentor"], cpu["trl"])),
           "tok_s": {s: tok / statistics.median(step[s]) for s in SIDES}}
    return res


def generate_only(args, new: int, reps: int) -> dict[str, float]:
    """Median seconds of sampling one batch's completions alone, interleaved, on one untrained
    student: mentor's ``complete_data`` (what its on-policy step calls) against TRL's
    ``GKDTrainer.generate_on_policy_outputs`` with the generation config GKDTrainer builds for
    ``lmbda=1`` (do_sample, temperature, top_k=0, top_p=1, use_cache, pad id), the student in
    training mode as in TRL's step."""
    from transformers import GenerationConfig
    from trl.experimental.gkd import GKDTrainer

    from mentor.lm.generate import complete_data
    v, p, b = args.op_vocab, args.op_prompt, args.op_batch
    student, _ = models(v, p + new, 64, 128, args.seed, eos=None)
    batch = prompt_rows(b, v, p, new, args.seed + 2)
    prompts = batch.ids[:, :p]
    inputs = {"prompts": prompts, "prompt_attention_mask": torch.ones_like(prompts)}
    config = GenerationConfig(max_new_tokens=new, temperature=args.op_temperature,
                              do_sample=True, top_k=0, top_p=1.0, use_cache=True,
                              pad_token_id=0)
    g = torch.Generator().manual_seed(args.seed)

    def trl():
        student.train()
        return GKDTrainer.generate_on_policy_outputs(student, inputs, config)[0]

    fns = {"mentor": lambda: complete_data(student, batch, greedy=False,
                                           temperature=args.op_temperature, generator=g).ids,
           "trl": trl}
    times = {k: [] for k in fns}
    for r in range(reps + 1):
        for side in (SIDES if r % 2 == 0 else SIDES[::-1]):
            t0 = time.perf_counter()
            out = fns[side]()
            if r:  # the first round warms up
                times[side].append(time.perf_counter() - t0)
            if out.shape != (b, p + new):
                raise RuntimeError(f"{side} sampled {tuple(out.shape)}; expected {(b, p + new)}")
    return {k: statistics.median(v) for k, v in times.items()}


def print_on_policy(args, res: dict) -> None:
    new, b = res["new"], args.op_batch
    scale = args.beta * (1 - args.beta) if 0 < args.beta < 1 else 1.0
    print(f"on-policy, {new} new tokens (prompt {args.op_prompt}, batch {b}: {b * new} "
          f"generated and trained tokens a step):")
    for s in SIDES:
        st, g = statistics.median(res["step"][s]), statistics.median(res["gen"][s])
        print(f"  {s:6s} step {st:.4f} s (runs: "
              + ", ".join(f"{x:.4f}" for x in res["step"][s])
              + f")  of which generate {g:.4f} s ({100 * g / st:.0f}%), the rest (teacher and "
              f"student forward, loss, backward, optimizer, loop) {st - g:.4f} s;  "
              f"{res['tok_s'][s]:.0f} tokens/s;  mean loss (TRL's convention) "
              f"{statistics.mean(res['losses'][s]) * (scale if s == 'mentor' else 1):.5f}")
    print(f"  mentor / TRL step time {res['ratio']:.3f} (wall clock), {res['cpu_ratio']:.3f} "
          f"(process CPU time); medians over rounds")
    go = res["gen_only"]
    print(f"  sampling alone (one batch, {args.op_gen_reps} interleaved rounds, median): mentor "
          f"complete_data {go['mentor']:.4f} s, TRL generate_on_policy_outputs "
          f"{go['trl']:.4f} s, ratio {go['mentor'] / go['trl']:.3f}")


# ------------------------------------------------------------------------------ main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vocab", type=int, default=32_000, help="step-time runs' vocabulary")
    ap.add_argument("--seq", type=int, default=512, help="step-time runs' sequence length")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--train-rows", type=int, default=64)
    ap.add_argument("--val-rows", type=int, default=8)
    ap.add_argument("--steps", type=int, default=5, help="timed steps per run")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    ap.add_argument("--reps", type=int, default=3, help="rounds (mentor and TRL runs each)")
    ap.add_argument("--beta", type=float, default=0.5)
    ap.add_argument("--check-rows", type=int, default=1,
                    help="rows of the loss-equality check over beta")
    ap.add_argument("--chunk-size", type=int, default=128, help="mentor's chunk_size")
    ap.add_argument("--mem-vocab", type=int, default=32_000)
    ap.add_argument("--mem-seq", type=int, default=1024)
    ap.add_argument("--mem-batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-memory", action="store_true", help="skip the memory comparison")
    ap.add_argument("--mmap-only", action="store_true",
                    help="memory with MALLOC_MMAP_THRESHOLD_=65536 only (not glibc's default)")
    ap.add_argument("--no-on-policy", action="store_true",
                    help="skip the on-policy comparison")
    ap.add_argument("--op-vocab", type=int, default=8_000, help="on-policy runs' vocabulary")
    ap.add_argument("--op-prompt", type=int, default=64, help="on-policy prompt tokens")
    ap.add_argument("--op-new", type=str, default="64,256",
                    help="on-policy new tokens per row, comma-separated: one comparison each")
    ap.add_argument("--op-batch", type=int, default=4)
    ap.add_argument("--op-steps", type=int, default=5, help="on-policy timed steps per run")
    ap.add_argument("--op-warmup", type=int, default=1, help="on-policy untimed steps first")
    ap.add_argument("--op-gen-reps", type=int, default=6,
                    help="rounds of the sampling-alone comparison")
    ap.add_argument("--op-chunk-size", type=int, default=0,
                    help="mentor's chunk_size on-policy (0: None, mentor's default, one pass)")
    ap.add_argument("--op-temperature", type=float, default=1.0,
                    help="sampling temperature (mentor sample_temperature, TRL temperature)")
    ap.add_argument("--quick", action="store_true",
                    help="small sizes (V 2,000 x L 64 steps, V 8,000 x L 256 memory, "
                         "on-policy V 2,000 prompt 16 N 16): a smoke run")
    ap.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args)
    if args.quick:
        args.vocab, args.seq, args.batch, args.train_rows, args.val_rows = 2_000, 64, 4, 32, 8
        args.steps, args.warmup, args.reps, args.check_rows = 6, 2, 2, 2
        args.mem_vocab, args.mem_seq, args.chunk_size, args.mmap_only = 8_000, 256, 64, True
        args.op_vocab, args.op_prompt, args.op_new, args.op_batch = 2_000, 16, "16", 4
        args.op_steps, args.op_warmup, args.op_gen_reps = 3, 1, 3
    try:
        import trl
    except ImportError:
        print("benchmarks/vs_trl.py needs trl: pip install -e .[bench]", file=sys.stderr)
        return 2
    import transformers
    quiet()
    torch.set_num_threads(args.threads)

    student0, teacher0 = models(args.vocab, args.seq, 64, 128, args.seed)
    train = token_rows(args.train_rows, args.vocab, args.seq, args.seed)
    val = token_rows(args.val_rows, args.vocab, args.seq, args.seed + 1)
    total = args.warmup + args.steps + 1
    print(f"mentor vs TRL {trl.__version__} GKDTrainer (transformers {transformers.__version__}, "
          f"torch {torch.__version__}), CPU, {args.threads} thread(s), float32")
    print(f"GPT-2 student 2x64, teacher 2x128, V={args.vocab} L={args.seq} (prompt "
          f"{args.seq // 4}, completion {args.seq - args.seq // 4}), batch {args.batch}, "
          f"{total} steps/run, beta {args.beta}, off-policy (TRL lmbda=0, seq_kd=False), Adam "
          f"lr {LR}; mentor: distill_lm(regime='off_policy', divergence='jsd', "
          f"chunk_size={args.chunk_size}); TRL: the real GKDTrainer", flush=True)

    worst64, worst32 = check_losses(copy.deepcopy(student0), teacher0, train, args.check_rows)
    lo = loss_only(copy.deepcopy(student0), teacher0, train, args.batch, args.beta,
                   args.chunk_size, 3)
    print("the loss alone, forward + backward on one batch's logits, median of 3 (s): "
          + ", ".join(f"{k} {v:.4f}" for k, v in lo.items()))

    # ---------------------------------------------------------------- 2. step time
    times = {s: [] for s in SIDES}
    trained, first, rows = {}, {}, None
    for r in range(args.reps):
        order = SIDES if r % 2 == 0 else SIDES[::-1]
        for side in order:
            student, teacher = copy.deepcopy(student0), copy.deepcopy(teacher0)
            stamps = Stamps(student)
            if side == "mentor":
                model, losses, drawn = run_mentor(student, teacher, train, beta=args.beta,
                                                  steps=total, batch=args.batch,
                                                  chunk_size=args.chunk_size, seed=args.seed)
                rows, first_loss = drawn, losses[0]
            else:
                model, first_loss = run_trl(student, teacher, train, rows, beta=args.beta,
                                            steps=total, batch=args.batch, seed=args.seed)
            stamps.handle.remove()
            times[side].append(statistics.median(stamps.intervals(args.warmup)))
            trained.setdefault(side, model)
            first.setdefault(side, first_loss)
            gc.collect()

    b = args.beta
    scale = b * (1 - b) if 0 < b < 1 else 1.0
    r_first = rel(first["mentor"] * scale, first["trl"])
    worst32 = max(worst32, r_first)
    print(f"first optimizer step (same weights, same batch): mentor {first['mentor']:.8f} "
          f"(x beta(1-beta) = {first['mentor'] * scale:.8f})  TRL {first['trl']:.8f}  "
          f"rel diff {r_first:.2e}")
    ratios = [m / t for m, t in zip(times["mentor"], times["trl"])]
    print("step time, median of each run's timed steps (s): "
          + "; ".join(f"{s} " + ", ".join(f"{v:.4f}" for v in times[s]) for s in SIDES))

    # ---------------------------------------------------------------- 4. validation
    vm = val_jsd(trained["mentor"], teacher0, val, b, args.batch)
    vt = val_jsd(trained["trl"], teacher0, val, b, args.batch)
    v0 = val_jsd(copy.deepcopy(student0), teacher0, val, b, args.batch)
    dw = max((p - q).abs().max().item() for p, q in zip(trained["mentor"].parameters(),
                                                        trained["trl"].parameters()))
    print(f"validation after {total} steps ({len(val)} held-out rows; mean JSD per completion "
          f"token, mentor's convention; TRL's = x beta(1-beta)): mentor {vm:.6f}  TRL {vt:.6f}  "
          f"diff {vm - vt:+.2e}  (untrained student {v0:.6f}); max |weight diff| {dw:.2e}")

    # ---------------------------------------------------------------- 5. on-policy
    ops = []
    if not args.no_on_policy:
        news = [int(x) for x in args.op_new.split(",")]
        print(f"on-policy (every step samples the batch's completions from the student, then "
              f"trains on them): GPT-2 student 2x64, teacher 2x128 without an eos id, "
              f"V={args.op_vocab}, prompt {args.op_prompt}, new tokens {news}, batch "
              f"{args.op_batch}, {args.op_warmup + args.op_steps + 1} steps/run, JSD beta "
              f"{args.beta}; mentor: distill_lm(regime='on_policy', lam=1.0, divergence='jsd', "
              f"sample_temperature={args.op_temperature}, chunk_size="
              f"{args.op_chunk_size or None}); TRL: GKDTrainer(lmbda=1.0, temperature="
              f"{args.op_temperature}, max_new_tokens=N, seq_kd=False, gradient_checkpointing="
              f"False), same prompts in the same order; tokens/s = batch x N (generated, then "
              f"trained on) / step time", flush=True)
        for new in news:
            ops.append(on_policy(args, new))
            ops[-1]["gen_only"] = generate_only(args, new, args.op_gen_reps)
            if len(ops) == 1:
                for side in SIDES:
                    print(f"  {side} generate() settings (effective): "
                          + ", ".join(f"{k}={v}" for k, v in ops[0]["settings"][side].items()))
            print_on_policy(args, ops[-1])

    # ---------------------------------------------------------------- 3. memory
    mem = None
    if not args.no_memory:
        mem = memory(args)
        print(f"peak memory, 2 steps of each real path in a fresh process: GPT-2 2x64 student "
              f"and teacher, V={args.mem_vocab} L={args.mem_seq} batch {args.mem_batch} "
              f"(one BxLxV float32 tensor = "
              f"{args.mem_batch * args.mem_seq * args.mem_vocab * 4 / 2**20:.0f} MiB)")
        print(f"{'side':8s} {'extra peak MiB, mmap >= 64 KiB':>31s} "
              f"{'extra peak MiB, glibc default':>30s}")
        for side in SIDES:
            d = mem.get(("default", side), {}).get("extra_mib", float("nan"))
            print(f"{side:8s} {mem['mmap', side]['extra_mib']:31.1f} {d:30.1f}")

    print(f"RESULT vs_trl_loss_rel_diff_float64 {worst64:.3e}")
    print(f"RESULT vs_trl_loss_rel_diff_float32 {worst32:.3e}")
    print(f"RESULT vs_trl_step_s_mentor {statistics.median(times['mentor']):.5f}")
    print(f"RESULT vs_trl_step_s_trl {statistics.median(times['trl']):.5f}")
    lo_ratio = lo[f"mentor chunk_size={args.chunk_size}"] / lo["TRL"]
    print(f"RESULT vs_trl_loss_only_ratio {lo_ratio:.3f}")
    print(f"RESULT vs_trl_val_jsd_mentor {vm:.6f}")
    print(f"RESULT vs_trl_val_jsd_trl {vt:.6f}")
    for name, worst in (("float64", worst64), ("float32", worst32)):
        if not worst <= TOLERANCE[name]:
            print(f"SANITY FAILED: mentor's loss and TRL's differ by {worst:.2e} (relative, "
                  f"{name}) after the beta(1-beta) factor; expected at most "
                  f"{TOLERANCE[name]:.0e}", file=sys.stderr)
            return 1
    print("LOSS_EQUAL mentor jsd x beta(1-beta) == TRL generalized_jsd_loss "
          f"(rel diff float64 {worst64:.1e}, float32 {worst32:.1e})")
    print(f"RATIO vs_trl_step {statistics.median(ratios):.3f}")
    for res in ops:
        n = res["new"]
        print(f"RESULT vs_trl_on_policy_tokens_per_s_mentor_N{n} {res['tok_s']['mentor']:.1f}")
        print(f"RESULT vs_trl_on_policy_tokens_per_s_trl_N{n} {res['tok_s']['trl']:.1f}")
        print(f"RESULT vs_trl_on_policy_step_ratio_N{n} {res['ratio']:.3f}")
        print(f"RESULT vs_trl_on_policy_cpu_ratio_N{n} {res['cpu_ratio']:.3f}")
        go = res["gen_only"]
        print(f"RESULT vs_trl_on_policy_sampling_only_ratio_N{n} "
              f"{go['mentor'] / go['trl']:.3f}")
    if ops:  # the least favourable to mentor of the sizes run
        print(f"RATIO vs_trl_on_policy_step {max(r['ratio'] for r in ops):.3f}")
    if mem is not None:
        def ratio(alloc):
            return mem[alloc, "mentor"]["extra_mib"] / mem[alloc, "trl"]["extra_mib"]
        if not args.mmap_only:
            print(f"RESULT vs_trl_memory_glibc_default {ratio('default'):.3f}")
        print(f"RATIO vs_trl_memory {ratio('mmap'):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
