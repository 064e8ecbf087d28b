"""The token feed: what each optimizer step of language-model distillation trains on, for
every regime of :func:`mentor.lm.distill.distill_lm`, on the engine's one loop
(:func:`mentor.engine.loop.run_training`; the contract :class:`mentor.contracts.StepFeed`).

A step is ``accumulate`` micro-batches of ``batch_size`` sequences (the *global* micro-batch:
with ``W`` processes each rank keeps its contiguous ``batch_size / W`` rows). Every rank draws
the same global rows and coins (on-policy's ``lam``) from the training's generator, which a
checkpoint saves; sampled sequences (student samples, teacher samples) come from a per-rank
generator under several processes (ranks sample differently) and from that same generator
in one process. All of a step's micro-batches are drawn -- student samples with the weights
before the step -- before any of their losses; each loss is normalized by the step's global
target-token count (:func:`~mentor.losses.tokens.token_count`), so every target token of the
step weighs the same however the tokens fall into micro-batches and ranks, and is multiplied
by ``W`` because DDP averages the gradients over the ranks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from torch import Tensor

from ..contracts import UpdaterHooks
from ..engine.loop import prepare_training
from ..errors import MentorError, TrainingFault
from ..losses.tokens import token_count, token_divergence
from ..recipe import TrainSpec
from ..tasks.tokens import TOKENS, TOKENS_PERPLEXITY, logits_of, takes_attention_mask
from ..updates import Frozen
from .generate import complete_data, exact_match
from .scores import perplexity
from .token_data import TokenData


@dataclass(frozen=True)
class Regime:
    """A regime and its options (see :mod:`mentor.lm.distill`)."""

    name: str
    divergence: str | None
    estimator: str
    lam: float
    warmup_steps: int
    sample_temperature: float
    loss_kw: dict

    def on_policy_at(self, step: int) -> bool:
        """Whether step ``step`` (1-based) trains on the on-policy loss."""
        return self.name == "on_policy" or (self.name == "bridge" and step > self.warmup_steps)


def rank_seed(seed: int, rank: int) -> int:
    """A seed for rank ``rank``'s own sampling generator, derived from ``seed`` and ``rank``."""
    return int(np.random.SeedSequence([seed % 2 ** 64, rank]).generate_state(1, np.uint64)[0])


@dataclass(frozen=True)
class Optimization:
    """How a token feed's steps update the student: the optimizer (``adam``, ``adamw`` or
    ``sgd``) at ``lr`` with ``weight_decay``, the schedule (``constant``, or ``cosine`` decay
    to 0 over the run), gradient-norm clipping (``None``: none), mixed precision (``no``,
    ``bf16``, ``fp16``: Accelerate's autocast) and gradient checkpointing (Hugging Face
    models: activations recomputed in the backward pass)."""

    lr: float = 3e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    schedule: str = "constant"
    max_grad_norm: float | None = None
    mixed_precision: str = "no"
    gradient_checkpointing: bool = False


SELECTIONS = ("exact_match", "perplexity", "last")


def period_training(student, seed: int, *, steps: int, eval_every: int, batch_size: int,
                    lr: float | None = None, validated: bool, checkpoint_dir=None,
                    checkpoint_every: int = 0, optimization: Optimization | None = None,
                    select: str = "exact_match"):
    """The engine's training for a token feed: ``steps`` optimizer steps in evaluation
    periods of ``eval_every`` steps (the loop's epochs), as ``optimization`` says (default
    Adam at ``lr``), no teacher updater; validation by ``select``'s metric (``exact_match``
    or ``perplexity``; ``last`` records exact match). The best period's weights when
    ``validated`` and ``select`` is a metric, else the last."""
    if select not in SELECTIONS:
        raise MentorError(f"select {select!r} is unknown; expected one of "
                          f"{', '.join(SELECTIONS)}")
    o = optimization or Optimization(lr=3e-3 if lr is None else lr)
    if o.gradient_checkpointing:
        if not takes_attention_mask(student):
            raise MentorError(f"gradient_checkpointing needs a Hugging Face model; "
                              f"{type(student).__name__} has no gradient_checkpointing_enable")
        student.gradient_checkpointing_enable()
    try:
        spec = TrainSpec(epochs=-(-steps // eval_every), batch_size=batch_size, lr=o.lr,
                         optimizer=o.optimizer, weight_decay=o.weight_decay,
                         schedule=o.schedule, max_grad_norm=o.max_grad_norm,
                         mixed_precision=o.mixed_precision, seeds=[seed],
                         select="best_val" if validated and select != "last" else "last",
                         checkpoint_every=checkpoint_every)
    except ValidationError as e:
        err = e.errors()[0]
        raise MentorError(f"distill_lm {'.'.join(map(str, err['loc']))}: {err['msg']}; got "
                          f"{err.get('input')!r}") from None
    task = TOKENS_PERPLEXITY if select == "perplexity" else TOKENS
    return prepare_training(student, spec, seed, task=task, updater=UpdaterHooks(Frozen()),
                            steps_per_epoch=min(eval_every, steps), total_steps=steps,
                            checkpoint_dir=checkpoint_dir)


class PeriodFeed:
    """What the token feeds share: epochs are evaluation periods of ``eval_every`` steps (the
    last one shorter when ``eval_every`` does not divide ``steps``), validation is the exact
    match of greedy completions on ``val`` or its perplexity (the training's task says which;
    none without ``val``), and each epoch records the step it ended at."""

    def __init__(self, tr, val: TokenData | None, steps: int, eval_every: int):
        self.tr, self.val, self.steps_total, self.eval_every = tr, val, steps, eval_every

    def steps_in(self, epoch: int) -> int:
        return min(self.eval_every, self.steps_total - epoch * self.eval_every)

    def new_history(self) -> dict[str, list]:
        return {"epoch": [], "train_loss": [], f"val_{self.tr.task.metric}": [], "step": []}

    def validate(self, model) -> float | None:
        if self.val is None:
            return None
        model = self.tr.acc.unwrap_model(model)
        if self.tr.task is TOKENS_PERPLEXITY:
            return perplexity(model, self.val)
        return exact_match(model, self.val)

    def epoch_summary(self, p) -> dict[str, float]:
        return {"step": p.step}

    def state_dict(self) -> dict[str, Tensor]:
        return {}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        return None


class TokenFeed(PeriodFeed):
    """The step feed of a :func:`~mentor.lm.distill.distill_lm` run on ``train`` (already the
    kept teacher completions for ``seqkd``); ``tr`` is the engine's training."""

    def __init__(self, tr, teacher, train: TokenData, val: TokenData | None, regime: Regime,
                 *, steps: int, eval_every: int, batch_size: int, accumulate: int,
                 sampler: torch.Generator):
        super().__init__(tr, val, steps, eval_every)
        self.teacher, self.train, self.regime = teacher, train, regime
        self.batch_size, self.accumulate, self.sampler = batch_size, accumulate, sampler
        self.lo = tr.rank * batch_size // tr.world
        self.hi = (tr.rank + 1) * batch_size // tr.world

    def steps(self, p, epoch: int):
        for _ in range(p.batch, self.steps_in(epoch)):
            yield self._step(p.step + 1)

    def _step(self, step: int) -> list:
        """The step's micro-batches, each a right-padded :class:`TokenData` with its own rows'
        completion masks (sampled completions end at their own end-of-sequence)."""
        tr, train, r = self.tr, self.train, self.regime
        g = tr.gen
        tr.model.train()
        drawn = []
        for _ in range(self.accumulate):
            rows = torch.randint(0, len(train), (self.batch_size,), generator=g)
            if tr.world > 1:
                rows = rows[self.lo:self.hi]
            batch = to_device(train.subset(rows), tr.device)
            mode = r.name
            if r.on_policy_at(step):
                if r.name == "bridge" or torch.rand((), generator=g) < r.lam:
                    batch = complete_data(tr.raw_model, batch, greedy=False,
                                          temperature=r.sample_temperature,
                                          generator=self.sampler)
                    rows, mode = None, "student_samples"
                else:
                    mode = "dataset_on_policy_loss"
            elif r.name == "bridge":
                batch = self.teacher.generate(batch, greedy=False,
                                              temperature=r.sample_temperature,
                                              generator=self.sampler)
                rows, mode = None, "teacher_samples"
            drawn.append((batch, rows, mode))
        n = token_count([b.target[:, 1:] for b, _, _ in drawn], tr.acc)
        return [self._micro(step, batch, rows, mode, n) for batch, rows, mode in drawn]

    def _micro(self, step, batch, rows, mode, n):
        def micro():
            if self.tr.autocast is None:
                loss, value = micro_loss(self.tr.model, self.teacher, batch, rows, mode, n,
                                         self.regime, step)
            else:
                with self.tr.autocast():
                    loss, value = micro_loss(self.tr.model, self.teacher, batch, rows, mode,
                                             n, self.regime, step)

            def fault():
                raise TrainingFault(f"step {step}: the {self.regime.name} loss is "
                                    f"{value.item()} (component: distill_lm/{mode})")
            return loss * self.tr.world, value, fault
        return micro

    def state_dict(self) -> dict[str, Tensor]:
        """The teacher's query count (a resumed run reports the whole run's) and, under
        several processes, this rank's sampling generator."""
        state = {}
        if self.teacher is not None:
            state["teacher_queries"] = torch.tensor(self.teacher.queries, dtype=torch.long)
        if self.sampler is not self.tr.gen:
            state["sampler"] = self.sampler.get_state()
        return state

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        if "sampler" in state:
            self.sampler.set_state(state["sampler"])
        if "teacher_queries" in state and self.teacher is not None:
            self.teacher.queries = int(state["teacher_queries"])


def to_device(data: TokenData, device) -> TokenData:
    return TokenData(data.ids.to(device), data.target.to(device), data.attention.to(device),
                     data.pad_id, data.eos_id)


def micro_loss(student, teacher, batch: TokenData, rows: Tensor | None, mode: str, n,
               regime: Regime, step: int) -> tuple[Tensor, Tensor]:
    """(loss to differentiate, the value it stands for) of one micro-batch, per target token
    of the whole step (``n`` tokens). Position ``t`` of the logits predicts token ``t + 1``,
    so the loss reads the targets shifted by one; padding is passed to the models as their
    attention mask."""
    ids, mask = batch.ids, batch.target[:, 1:]
    ids_in, att_in = ids[:, :-1], batch.attention[:, :-1]
    zs = logits_of(student, ids_in, att_in)
    if regime.name in ("supervised", "seqkd"):
        loss = F.cross_entropy(zs[mask].float(), ids[:, 1:][mask], reduction="sum") / n
        return loss, loss.detach()
    on = regime.on_policy_at(step)
    signal = teacher.signal(ids_in, rows, att_in)
    if isinstance(signal, Tensor):  # a teacher left on another device than the student
        signal = signal.to(zs.device)
    if on and regime.estimator == "sampled" and mode == "student_samples":
        loss, value = sampled_reverse_kl(zs, signal, ids[:, 1:], mask,
                                         regime.loss_kw["temperature"])
        return loss / n, value / n
    kind = regime.divergence or ("reverse_kl" if on else "forward_kl")
    loss = token_divergence(zs, signal, mask, kind=kind, reduction="mean", normalizer=n,
                            **regime.loss_kw)
    return loss, loss.detach()


def sampled_reverse_kl(zs: Tensor, signal, tokens: Tensor, mask: Tensor,
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
