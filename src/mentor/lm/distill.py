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

Data parallelism (``W`` ranks, see :func:`distill_lm` for when it is on): ``batch_size`` is the
*global* micro-batch. Every rank draws the same global rows (and every coin, e.g. on-policy's
``lam``) from one generator seeded with ``seed``, keeps its contiguous ``batch_size / W`` rows,
normalizes by the global token count and, after its backward passes, sums the gradients over
the ranks with one ``all_reduce`` of a flat buffer (no DDP wrapper: ``generate`` and Hugging
Face models stay plain). The loss of a rank's tokens divided by the global count, summed over
ranks, is the single-process loss of the global batch, so the ranks stay identical and match a
single-process run with the same ``seed`` and ``batch_size`` up to float summation order.
Sampled sequences (student samples, teacher samples, ``seqkd``'s completions, whose prompts
are split across the ranks) come from a per-rank generator, so ranks sample differently.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from ..errors import MentorError, TrainingFault, check_param
from ..losses.tokens import DIVERGENCES, token_count, token_divergence
from .generate import complete, exact_match, logits_of
from .signals import as_token_teacher
from .testbed import TokenData

REGIMES = ("supervised", "off_policy", "seqkd", "on_policy", "bridge")


@dataclass
class LMResult:
    """The trained student (best validation exact match), its history and what was spent."""

    model: nn.Module
    history: list[dict] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    best_step: int = 0
    best_val: float = float("nan")
    teacher_queries: int = 0
    kept_sequences: int | None = None
    _best_state: dict | None = field(default=None, repr=False)

    def evaluate(self, step: int, val: TokenData, on_eval=None) -> float:
        """Exact match on ``val`` now; remembers the weights of the best step so far."""
        acc = exact_match(self.model, val)
        self.history.append({"step": step, "loss": self.losses[-1] if self.losses else None,
                             "val_exact_match": acc})
        if on_eval is not None:
            on_eval(step, {"val_accuracy": acc})
        if self._best_state is None or acc > self.best_val:
            self.best_val, self.best_step = acc, step
            self._best_state = copy.deepcopy(self.model.state_dict())
        return acc

    def restore_best(self) -> None:
        """Load the best evaluated weights back into the model (no-op without evaluation)."""
        if self._best_state is not None:
            self.model.load_state_dict(self._best_state)


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
                       generator) -> tuple[Tensor, Tensor]:
    """The teacher's completions of every training prompt (greedy, or with gold-agreement
    rejection sampling): ``(ids, accepted)``, one row per row of ``train``."""
    p = train.prompt_len
    new = train.ids.shape[1] - p
    prompts = train.ids[:, :p]
    if gold_tries <= 0:
        return teacher.generate(prompts, new), torch.ones(len(train), dtype=torch.bool)
    ids = train.ids.clone()
    accepted = torch.zeros(len(train), dtype=torch.bool)
    for _ in range(gold_tries):
        todo = (~accepted).nonzero().squeeze(-1)
        if len(todo) == 0:
            break
        out = teacher.generate(prompts[todo], new, greedy=False, temperature=temperature,
                               generator=generator)
        ok = (out[:, p:] == train.ids[todo, p:]).all(1)
        ids[todo[ok]] = out[ok]
        accepted[todo[ok]] = True
    return ids, accepted


def _seqkd_data(teacher, train: TokenData, gold_tries: int, temperature: float, generator,
                rank: int = 0, world: int = 1) -> TokenData:
    """The kept teacher completions as training data. With ``world > 1`` each rank completes
    its contiguous share of the prompts and all ranks gather the whole set (same row order)."""
    if world == 1:
        ids, accepted = _seqkd_completions(teacher, train, gold_tries, temperature, generator)
    else:
        shares = torch.tensor_split(torch.arange(len(train)), world)
        ids, accepted = _seqkd_completions(teacher, train.subset(shares[rank]), gold_tries,
                                           temperature, generator)
        local = torch.cat([ids.cpu().reshape(-1), accepted.long()])
        size = max(len(s) for s in shares) * (train.ids.shape[1] + 1)
        parts = _all_gather(torch.cat([local, local.new_zeros(size - len(local))]), world)
        width = train.ids.shape[1]
        ids = torch.cat([q[:len(s) * width].view(len(s), width)
                         for q, s in zip(parts, shares)])
        accepted = torch.cat([q[len(s) * width:len(s) * (width + 1)].bool()
                              for q, s in zip(parts, shares)])
    if not accepted.any():
        raise MentorError(f"no teacher completion agreed with the gold answer in {gold_tries} "
                          "tries on any prompt; expected a teacher that is sometimes right")
    return TokenData(ids[accepted], train.target[accepted])


# ------------------------------------------------------------------------------ data parallel

def _data_parallel(accelerator, batch_size: int) -> tuple[int, int]:
    """``(rank, world)`` of this process: the accelerator's when one is given, else the
    initialized torch.distributed process group's, else ``(0, 1)``."""
    initialized = dist.is_available() and dist.is_initialized()
    if accelerator is not None:
        rank, world = int(accelerator.process_index), int(accelerator.num_processes)
    elif initialized:
        rank, world = dist.get_rank(), dist.get_world_size()
    else:
        return 0, 1
    if batch_size % world:
        raise MentorError(f"distill_lm batch_size {batch_size} is not divisible by the world "
                          f"size {world}; expected a multiple of {world} (each rank takes an "
                          "equal share of every global batch)")
    if world > 1 and not initialized:
        raise MentorError(f"the accelerator has {world} processes but no torch.distributed "
                          "process group is initialized; expected a multi-CPU or multi-GPU "
                          "(DDP-style) launch")
    return rank, world


def _rank_seed(seed: int, rank: int) -> int:
    """A seed for rank ``rank``'s own generator, derived from ``seed`` and ``rank``."""
    return int(np.random.SeedSequence([seed % 2 ** 64, rank]).generate_state(1, np.uint64)[0])


def _comm(t: Tensor) -> Tensor:
    """``t`` on a device the process group's backend can communicate (CUDA for NCCL)."""
    if "nccl" in str(dist.get_backend()) and t.device.type != "cuda":
        return t.to(torch.device("cuda", torch.cuda.current_device()))
    return t


def _all_gather(t: Tensor, world: int) -> list[Tensor]:
    """Every rank's ``t`` (same shape on all ranks), on ``t``'s device."""
    c = _comm(t)
    parts = [torch.empty_like(c) for _ in range(world)]
    dist.all_gather(parts, c)
    return [q.to(t.device) for q in parts]


def _all_reduce_grads(params: list[nn.Parameter], extra: list[float]) -> list[float]:
    """Sum the gradients of ``params`` and the numbers ``extra`` over all ranks with one
    ``all_reduce`` of a flat buffer (at least float32). A parameter without a gradient on
    every rank keeps none; one with a gradient on some rank gets the sum."""
    grads = [p.grad for p in params]
    dtype = functools.reduce(torch.promote_types,
                             [g.dtype for g in grads if g is not None], torch.float32)
    device = next((q.device for q in params), torch.device("cpu"))
    flat = [torch.zeros(p.numel(), dtype=dtype, device=device) if g is None
            else g.reshape(-1).to(device=device, dtype=dtype) for p, g in zip(params, grads)]
    flags = [0.0 if g is None else 1.0 for g in grads]
    buf = _comm(torch.cat([*flat, torch.tensor(flags + list(extra), dtype=dtype,
                                               device=device)]))
    dist.all_reduce(buf, op=dist.ReduceOp.SUM)
    tail = buf[-(len(params) + len(extra)):].tolist()
    offset = 0
    for p, has in zip(params, tail):
        piece = buf[offset:offset + p.numel()].view_as(p)
        offset += p.numel()
        if p.grad is not None:
            p.grad.copy_(piece)
        elif has > 0:
            p.grad = piece.to(device=p.device, dtype=p.dtype, copy=True)
    return tail[len(params):]


def _all_reduce_sum(value: float, device) -> float:
    t = _comm(torch.tensor([float(value)], dtype=torch.float64, device=device))
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t)


def distill_lm(student: nn.Module, teacher, train: TokenData, *, val: TokenData | None = None,
               regime: str = "off_policy", divergence: str | None = None, beta: float = 0.5,
               alpha: float = 0.1, temperature: float = 1.0, t2: bool = False,
               steps: int = 500, batch_size: int = 64, lr: float = 3e-3, accumulate: int = 1,
               lam: float = 1.0, estimator: str = "full", warmup_steps: int | None = None,
               gold_tries: int = 0, sample_temperature: float = 1.0,
               chunk_size: int | None = None, eval_every: int = 100, seed: int = 0,
               on_eval=None, accelerator=None) -> LMResult:
    """Train ``student`` (a causal LM: ids -> logits) from ``teacher`` on ``train`` with one
    of :data:`REGIMES` (module docstring). ``divergence`` defaults to forward KL (off-policy,
    bridge warm-up) or reverse KL (on-policy); ``beta``, ``alpha``, ``temperature``, ``t2``
    and ``chunk_size`` go to :func:`~mentor.losses.tokens.token_divergence`. Returns an
    :class:`LMResult` holding the student at its best validation exact match.

    Data parallelism: the ranks are ``accelerator``'s (an ``accelerate.Accelerator``) when one
    is given, else those of the initialized ``torch.distributed`` process group, else there is
    one process. With ``W > 1`` ranks (module docstring) every rank calls this with the same
    arguments, data and initial weights; ``batch_size`` is the global micro-batch and must be
    divisible by ``W``; pass the bare model, not a DDP wrapper. Losses are global, validation
    runs on every rank on the whole ``val`` (``on_eval`` is called on every rank) and
    ``teacher_queries`` and ``kept_sequences`` count all ranks. With one process the run is
    exactly the single-process run.

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
    if regime != "supervised":
        if teacher is None:
            raise MentorError(f"regime {regime!r} needs a teacher; use 'supervised' without one")
        teacher = as_token_teacher(teacher)
    if len(train) == 0:
        raise MentorError("training data has no sequences; expected at least one")
    rank, world = _data_parallel(accelerator, batch_size)
    if world > 1 and isinstance(student, DistributedDataParallel):
        raise MentorError("distill_lm got a DistributedDataParallel student; expected the bare "
                          "model (distill_lm sums the gradients over the ranks itself)")
    # g: shared by all ranks (rows, coins), in lockstep; gs: this rank's sampling generator
    g = torch.Generator().manual_seed(seed)
    if world == 1:
        torch.manual_seed(seed)
        gs = g
    else:
        torch.manual_seed(_rank_seed(seed, rank))
        gs = torch.Generator().manual_seed(_rank_seed(seed, rank))
    lo, hi = rank * batch_size // world, (rank + 1) * batch_size // world
    kept = None
    if regime == "seqkd":
        train = _seqkd_data(teacher, train, gold_tries, sample_temperature, gs, rank, world)
        kept = len(train)
    p = train.prompt_len
    new = train.ids.shape[1] - p
    device = next(student.parameters()).device
    params = [q for q in student.parameters() if q.requires_grad]
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    res = LMResult(student, kept_sequences=kept)

    for step in range(1, steps + 1):
        student.train()
        micro = []
        for _ in range(accumulate):
            rows = torch.randint(0, len(train), (batch_size,), generator=g)
            if world > 1:
                rows = rows[lo:hi]
            ids = train.ids[rows].to(device)
            mode = regime
            if regime == "on_policy" or (regime == "bridge" and step > warmup_steps):
                if regime == "bridge" or torch.rand((), generator=g) < lam:
                    ids = complete(student, ids[:, :p], new, greedy=False,
                                   temperature=sample_temperature, generator=gs)
                    rows, mode = None, "student_samples"
                else:
                    mode = "dataset_on_policy_loss"
            elif regime == "bridge":
                ids = teacher.generate(ids[:, :p], new, greedy=False,
                                       temperature=sample_temperature, generator=gs)
                rows, mode = None, "teacher_samples"
            # every row of a TokenData has the same prompt/completion layout
            mask = train.target[0, 1:].expand(len(ids), -1).to(device)
            micro.append((ids, rows, mask, mode))
        n = token_count([m for _, _, m, _ in micro], accelerator)
        opt.zero_grad(set_to_none=True)
        total, fault = 0.0, None
        for ids, rows, mask, mode in micro:
            loss, value = _micro_loss(student, teacher, ids, rows, mask, mode, n, regime,
                                      step > warmup_steps, divergence, estimator,
                                      dict(beta=beta, alpha=alpha, temperature=temperature,
                                           t2=t2, chunk_size=chunk_size))
            if not torch.isfinite(loss):
                fault = (f"step {step}: the {regime} loss is {loss.item()} "
                         f"(component: distill_lm/{mode})")
                if world == 1:
                    raise TrainingFault(fault)
                break  # raise after the all-reduce, on every rank together
            loss.backward()
            total += float(value)
        if world > 1:
            total, faults = _all_reduce_grads(params, [total, float(fault is not None)])
            if faults > 0:
                raise TrainingFault(fault or f"step {step}: the {regime} loss is not finite "
                                             f"on another rank (component: distill_lm)")
        opt.step()
        res.losses.append(total)
        if val is not None and (step % eval_every == 0 or step == steps):
            res.evaluate(step, val, on_eval)
    res.restore_best()
    res.teacher_queries = getattr(teacher, "queries", 0) if teacher is not None else 0
    if world > 1:
        res.teacher_queries = int(_all_reduce_sum(res.teacher_queries, device))
    return res


def _micro_loss(student, teacher, ids, rows, mask, mode, n, regime, past_warmup, divergence,
                estimator, kw) -> tuple[Tensor, Tensor]:
    """(loss to differentiate, the value it stands for) of one micro-batch, per token of
    the whole step (``n`` target tokens)."""
    ids_in = ids[:, :-1]
    zs = logits_of(student, ids_in)
    if regime in ("supervised", "seqkd"):
        loss = F.cross_entropy(zs[mask].float(), ids[:, 1:][mask], reduction="sum") / n
        return loss, loss.detach()
    on = regime == "on_policy" or (regime == "bridge" and past_warmup)
    signal = teacher.signal(ids_in, rows)
    if on and estimator == "sampled" and mode == "student_samples":
        loss, value = _sampled_reverse_kl(zs, signal, ids[:, 1:], mask, kw["temperature"])
        return loss / n, value / n
    kind = divergence or ("reverse_kl" if on else "forward_kl")
    loss = token_divergence(zs, signal, mask, kind=kind, reduction="mean", normalizer=n, **kw)
    return loss, loss.detach()


def _sampled_reverse_kl(zs: Tensor, signal, tokens: Tensor, mask: Tensor,
                        temperature: float) -> tuple[Tensor, Tensor]:
    """The surrogate ``Σ sg(log p_s(y) - log p_t(y)) * log p_s(y)`` over masked positions of
    the sampled tokens ``y`` (its gradient is the policy gradient of the reverse KL) and the
    value it estimates, ``Σ (log p_s(y) - log p_t(y))`` (full teacher logits needed: a
    top-k teacher may not rank y)."""
    if not isinstance(signal, Tensor):
        raise MentorError("the sampled-token estimator needs the teacher's full logits; a "
                          "top-k teacher may not score the sampled token (use estimator='full')")
    ls = torch.log_softmax(zs.float() / temperature, -1).gather(-1, tokens[..., None])[..., 0]
    lt = torch.log_softmax(signal.float() / temperature, -1).gather(-1, tokens[..., None])[..., 0]
    adv = (ls - lt).detach()
    m = mask.bool()
    return (adv * ls)[m].sum(), adv[m].sum()
