"""Language-model distillation regimes on one loop: :func:`distill_lm`.

Where the training sequences come from, and which loss compares student and teacher on them:

* ``supervised``  -- dataset completions, cross-entropy (the no-teacher baseline).
* ``off_policy``  -- dataset completions, token divergence to the teacher's distribution at
  every completion position (word-level KD; DistillKit's offline logits when the teacher is a
  :class:`~mentor.lm.signals.StoredTopKTeacher`).
* ``seqkd``       -- sequence-level KD (Kim & Rush 2016): the teacher completes every training
  prompt once; the student learns those completions with cross-entropy. ``gold_tries=N``
  keeps, per prompt, the first of up to N sampled teacher completions whose answer equals
  the dataset's (gold-agreement rejection sampling, Fully Open Meditron, paper 41) and drops
  prompts with none.
* ``on_policy``   -- GKD (Agarwal et al. 2024): with probability ``lam`` a batch's completions
  are sampled from the student (no gradient through sampling), else taken from the dataset;
  the teacher scores them. ``estimator="full"`` minimizes the full-distribution divergence
  (default reverse KL) at each position; ``estimator="sampled"`` uses the sampled-token
  reverse-KL policy gradient: per position ``(log p_s(y_t) - log p_t(y_t))`` (no gradient)
  times ``log p_s(y_t)`` -- the per-token, undiscounted form of on-policy distillation (dataset
  batches under ``lam < 1`` use the full loss: the score-function estimator needs samples of
  the student).
* ``bridge``      -- the sparse-to-dense bridge of paper 39: ``warmup_steps`` of forward KL on
  teacher-sampled completions, then on-policy reverse KL on student samples.

Each optimizer step takes ``accumulate`` micro-batches of ``batch_size`` sequences and weights
every target token equally across them (:func:`~mentor.losses.tokens.token_count`). The best
student by validation exact match (evaluated every ``eval_every`` steps) is kept.

Every regime runs on the engine's one training loop (:func:`mentor.engine.loop.run_training`)
through the token feed of :mod:`mentor.lm.regimes`: evaluation periods are the loop's epochs,
selection by the tokens task's metric (:class:`mentor.tasks.Tokens`), checkpoints and
``resume`` are the loop's, and data parallelism is Accelerate's DDP. With ``W`` processes,
``batch_size`` is the *global* micro-batch: every rank draws the same global rows (and every
coin, e.g. on-policy's ``lam``) from one generator seeded with ``seed``, keeps its contiguous
``batch_size / W`` rows and normalizes by the global token count, so the ranks stay identical
and match a single-process run with the same ``seed`` and ``batch_size`` up to float
summation order. Sampled sequences (student samples, teacher samples, ``seqkd``'s
completions, whose prompts are split across the ranks) come from a per-rank generator, so
ranks sample differently.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from ..engine.accel import get_accelerator
from ..engine.loop import run_training
from ..errors import MentorError, check_param
from ..losses.tokens import DIVERGENCES
from ..tasks.tokens import TOKENS
from .regimes import Optimization, Regime, TokenFeed, period_training, rank_seed
from .signals import as_token_teacher
from .token_data import TokenData, cut_at_eos, from_lists

REGIMES = ("supervised", "off_policy", "seqkd", "on_policy", "bridge")


@dataclass
class LMResult:
    """The trained student (the one ``select`` kept), its history (one entry per evaluation:
    step, that step's loss, the validation metric), every step's loss, the selected step,
    its validation metric (``best_val``) and what was spent."""

    model: nn.Module
    history: list[dict] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    best_step: int = 0
    best_val: float = float("nan")
    teacher_queries: int = 0
    kept_sequences: int | None = None


def _check(regime, divergence, estimator, lam, steps, batch_size, accumulate, warmup_steps):
    if regime not in REGIMES:
        raise MentorError(f"regime {regime!r} is unknown; expected one of {', '.join(REGIMES)}")
    if divergence is not None and divergence not in DIVERGENCES:
        raise MentorError(f"divergence {divergence!r} is unknown; expected one of "
                          f"{', '.join(DIVERGENCES)}")
    if estimator not in ("full", "sampled"):
        raise MentorError(f"estimator {estimator!r} is unknown; expected 'full' or 'sampled'")
    check_param("on_policy", "lam", lam, low=0, high=1)
    for name, v in (("steps", steps), ("batch_size", batch_size), ("accumulate", accumulate)):
        check_param("distill_lm", name, v, low=1)
    if regime == "bridge" and not 0 <= warmup_steps <= steps:
        raise MentorError(f"bridge warmup_steps {warmup_steps} is out of range; expected "
                          f"0..{steps} (the total steps)")


def _seqkd_completions(teacher, train: TokenData, gold_tries: int, temperature: float,
                       generator) -> tuple[list[list[int]], Tensor]:
    """The teacher's completions of every training prompt (greedy, or with gold-agreement
    rejection sampling: a sample is kept when it equals the dataset's completion up to its
    end-of-sequence): ``(completions, accepted)``, one per row of ``train``."""
    if gold_tries <= 0:
        return (teacher.generate(train).completion_lists(),
                torch.ones(len(train), dtype=torch.bool))
    gold = train.completion_lists()
    done = list(gold)
    accepted = torch.zeros(len(train), dtype=torch.bool)
    for _ in range(gold_tries):
        todo = (~accepted).nonzero().squeeze(-1)
        if len(todo) == 0:
            break
        out = teacher.generate(train.subset(todo), greedy=False, temperature=temperature,
                               generator=generator).completion_lists()
        for i, c in zip(todo.tolist(), out):
            if c == cut_at_eos(gold[i], train.eos_id):
                done[i], accepted[i] = c, True
    return done, accepted


def _seqkd_data(teacher, train: TokenData, gold_tries: int, temperature: float, generator,
                acc=None) -> TokenData:
    """The kept teacher completions as training data. With several processes (``acc``'s,
    an ``accelerate.Accelerator``; ``None``: one process) each rank completes its contiguous
    share of the prompts and all ranks gather the whole set (same row order)."""
    rank, world = (0, 1) if acc is None else (int(acc.process_index), int(acc.num_processes))
    if world == 1:
        completions, accepted = _seqkd_completions(teacher, train, gold_tries, temperature,
                                                   generator)
    else:
        shares = torch.tensor_split(torch.arange(len(train)), world)
        mine, ok = _seqkd_completions(teacher, train.subset(shares[rank]), gold_tries,
                                      temperature, generator)
        completions, accepted = _gather_lists(mine, ok, acc)
    if not accepted.any():
        raise MentorError(f"no teacher completion agreed with the gold answer in {gold_tries} "
                          "tries on any prompt; expected a teacher that is sometimes right")
    keep = accepted.nonzero().squeeze(-1).tolist()
    prompts = train.prompt_lists()
    return from_lists([prompts[i] for i in keep], [completions[i] for i in keep],
                      pad_id=train.pad_id, eos_id=train.eos_id)


def _gather_lists(mine: list[list[int]], ok: Tensor, acc) -> tuple[list[list[int]], Tensor]:
    """Every rank's completions and acceptances, in rank order (lists of any lengths: each
    rank sends its flat tokens, lengths and flags padded to the longest rank's)."""
    lengths = torch.tensor([len(c) for c in mine], dtype=torch.long)
    flat = torch.tensor([t for c in mine for t in c], dtype=torch.long)
    head = torch.tensor([len(mine), len(flat)], dtype=torch.long)
    sizes = acc.gather(head.to(acc.device)).cpu().view(-1, 2)
    rows, toks = int(sizes[:, 0].max()), int(sizes[:, 1].max())
    local = torch.cat([lengths, lengths.new_zeros(rows - len(mine)), ok.long(),
                       lengths.new_zeros(rows - len(mine)), flat,
                       flat.new_zeros(toks - len(flat))])
    parts = acc.gather(local.to(acc.device)).cpu().view(len(sizes), -1)
    completions, accepted = [], []
    for part, (n, _) in zip(parts, sizes.tolist()):
        lens, flags, tokens = part[:n], part[rows:rows + n], part[2 * rows:].tolist()
        at = 0
        for length, flag in zip(lens.tolist(), flags.tolist()):
            completions.append(tokens[at:at + length])
            accepted.append(bool(flag))
            at += length
    return completions, torch.tensor(accepted, dtype=torch.bool)


def distill_lm(student: nn.Module, teacher, train: TokenData, *, val: TokenData | None = None,
               regime: str = "off_policy", divergence: str | None = None, beta: float = 0.5,
               alpha: float = 0.1, temperature: float = 1.0, t2: bool = False,
               steps: int = 500, batch_size: int = 64, lr: float = 3e-3, accumulate: int = 1,
               lam: float = 1.0, estimator: str = "full", warmup_steps: int | None = None,
               gold_tries: int = 0, sample_temperature: float = 1.0,
               chunk_size: int | None = None, eval_every: int = 100, seed: int = 0,
               on_eval=None, accelerator=None, checkpoint_dir=None, resume: bool = False,
               checkpoint_every: int = 0, max_steps: int | None = None,
               optimization: Optimization | None = None,
               select: str = "exact_match") -> LMResult:
    """Train ``student`` (a causal LM: ids -> logits) from ``teacher`` on ``train`` with one
    of :data:`REGIMES` (module docstring). ``divergence`` defaults to forward KL (off-policy,
    bridge warm-up) or reverse KL (on-policy); ``beta``, ``alpha``, ``temperature``, ``t2``
    and ``chunk_size`` go to :func:`~mentor.losses.tokens.token_divergence`. Returns an
    :class:`LMResult` holding the student at its best validation exact match.

    ``select`` picks the student kept: ``exact_match`` (highest validation exact match of
    greedy completions), ``perplexity`` (lowest validation perplexity of ``val``'s target
    tokens, :func:`mentor.lm.scores.perplexity`: for open-ended text, where exact match
    says little) or ``last`` (the last step's weights; exact match is still recorded). The
    history's entries hold ``val_exact_match`` or ``val_perplexity``.

    ``optimization`` (:class:`~mentor.lm.regimes.Optimization`) sets the optimizer, weight
    decay, learning-rate schedule, gradient clipping, mixed precision and gradient
    checkpointing; without it, Adam at ``lr`` and nothing else.

    Checkpoints (the engine's, :mod:`mentor.engine.checkpoint`): with ``checkpoint_dir``
    every evaluation (and every ``checkpoint_every`` steps) is saved; ``max_steps`` stops
    early after saving; ``resume=True`` continues from the latest checkpoint and ends with
    the uninterrupted run's student, losses and history (one process: every draw comes from
    the saved generator).

    Data parallelism: the ranks are ``accelerator``'s (an ``accelerate.Accelerator``) when one
    is given, else the process's (:func:`mentor.engine.get_accelerator`: ``torchrun`` or
    ``accelerate launch`` set them), else there is one process. With ``W > 1`` ranks (module
    docstring) every rank calls this with the same arguments, data and initial weights;
    ``batch_size`` is the global micro-batch and must be divisible by ``W``; pass the bare
    model, not a DDP wrapper. Losses are global, validation runs on every rank on the whole
    ``val`` (``on_eval`` is called on every rank) and ``teacher_queries`` and
    ``kept_sequences`` count all ranks. With one process the run is exactly the
    single-process run.

    >>> import torch
    >>> from mentor.lm import Addition, CharLM, distill_lm
    >>> from mentor.lm.testbed import VOCAB
    >>> train, val, _ = Addition(digits=1).split(0, val=20, test=20)
    >>> _ = torch.manual_seed(0)
    >>> teacher = CharLM(len(VOCAB), d_model=32, layers=2)
    >>> teacher = distill_lm(teacher, None, train, regime="supervised", steps=30).model
    >>> res = distill_lm(CharLM(len(VOCAB), d_model=16), teacher, train, val=val,
    ...                  regime="off_policy", divergence="jsd", beta=0.5, steps=30,
    ...                  eval_every=15)
    >>> len(res.losses), [h["step"] for h in res.history], res.losses[-1] < res.losses[0]
    (30, [15, 30], True)
    """
    warmup_steps = steps // 2 if warmup_steps is None else warmup_steps
    _check(regime, divergence, estimator, lam, steps, batch_size, accumulate, warmup_steps)
    if regime == "supervised":
        teacher = None  # the data alone: a given teacher is never asked
    elif teacher is None:
        raise MentorError(f"regime {regime!r} needs a teacher; use 'supervised' without one")
    else:
        teacher = as_token_teacher(teacher)
    if len(train) == 0:
        raise MentorError("training data has no sequences; expected at least one")
    optimization = optimization or Optimization(lr=lr)
    acc = accelerator or get_accelerator(optimization.mixed_precision)
    world = int(acc.num_processes)
    if batch_size % world:
        raise MentorError(f"distill_lm batch_size {batch_size} is not divisible by the world "
                          f"size {world}; expected a multiple of {world} (each rank takes an "
                          "equal share of every global batch)")
    if isinstance(student, DistributedDataParallel):
        raise MentorError("distill_lm got a DistributedDataParallel student; expected the bare "
                          "model (the training loop wraps it for data parallelism itself)")
    rank = int(acc.process_index)
    torch.manual_seed(seed if world == 1 else rank_seed(seed, rank))
    tr = period_training(student, seed, steps=steps, eval_every=eval_every,
                         batch_size=batch_size, validated=val is not None,
                         checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every,
                         optimization=optimization, select=select)
    # tr.gen: shared by all ranks (rows, coins), in lockstep; sampler: this rank's samples
    sampler = tr.gen if world == 1 else torch.Generator().manual_seed(rank_seed(seed, rank))
    kept = None
    if regime == "seqkd":
        train = _seqkd_data(teacher, train, gold_tries, sample_temperature, sampler, acc)
        kept = len(train)
    tr.feed = TokenFeed(tr, teacher, train, val, Regime(
        regime, divergence, estimator, lam, warmup_steps, sample_temperature,
        dict(beta=beta, alpha=alpha, temperature=temperature, t2=t2, chunk_size=chunk_size)),
        steps=steps, eval_every=eval_every, batch_size=batch_size, accumulate=accumulate,
        sampler=sampler)

    metric = tr.task.metric

    def report(epoch: int, metrics: dict) -> None:
        if on_eval is not None and f"val_{metric}" in metrics:
            shown = "val_accuracy" if metric == TOKENS.metric else f"val_{metric}"
            on_eval(int(metrics["step"]), {shown: metrics[f"val_{metric}"]})
    fitted = run_training(tr, resume=resume, max_steps=max_steps, on_epoch=report)
    return _result(fitted, teacher, kept, acc, tr.device, metric)


def _result(fitted, teacher, kept, acc, device, metric: str) -> LMResult:
    """The loop's result as an :class:`LMResult`, with the teacher queries of every rank."""
    queries = teacher.queries if teacher is not None else 0
    if acc.num_processes > 1:
        queries = int(acc.reduce(torch.tensor(queries, device=device), reduction="sum"))
    return result_of(fitted, int(queries), kept, metric)


def result_of(fitted, teacher_queries: int, kept: int | None = None,
              metric: str = TOKENS.metric) -> LMResult:
    """An :class:`LMResult` from the engine's result of a token feed: per-step losses, one
    history entry per evaluation (its step, that step's loss, the validation ``metric`` as
    ``val_<metric>``) and the selected step."""
    h = fitted.history
    vals = h.get(f"val_{metric}", [])
    history = [{"step": s, "loss": fitted.step_losses[s - 1], f"val_{metric}": v}
               for s, v in zip(h["step"], vals)]
    res = LMResult(fitted.model, history, list(fitted.step_losses),
                   teacher_queries=teacher_queries, kept_sequences=kept)
    if vals:
        res.best_val = fitted.best_val_accuracy
        res.best_step = h["step"][fitted.best_epoch - 1]
    return res
