"""Test-time adaptation on a stream of shifted batches (METHODS.md §59 ``TTALoop``; 21, 48).

A model trained on the source data meets test batches from a sequence of corruptions, one
batch at a time, without labels. Each batch is first predicted (online accuracy: what the
user gets), then used to adapt:

- ``source``: no adaptation (the baseline);
- ``bn-adapt``: BatchNorm layers normalise with the test batch's statistics and update their
  running statistics; no gradient step;
- ``mean-teacher``: an EMA teacher predicts; the student learns the teacher's distribution
  on an augmented view of the batch with symmetric cross-entropy, and the teacher follows
  it (CoTTA-style continual mean teacher);
- ``psmt``: the mean teacher with PSMT's two parts: a Fisher-weighted pull of the student
  back to the source weights, ``λ Σ_i F_i (θ_i − θ⁰_i)²`` (``F`` from source batches), and
  a Fisher-masked EMA teacher (:class:`mentor.updates.FisherMaskedEMA`).

The result holds online accuracy per batch and per corruption, and the accuracy on clean
data before and after the stream (forgetting). The adapting methods train on the engine's
one loop (:class:`StreamFeed`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Iterable, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .contracts import UpdaterHooks
from .data.augment import Augment, default_views, role_generator
from .engine.loop import prepare_training, run_training
from .engine.signal import TeacherSide
from .errors import MentorError, TrainingFault, check_param
from .recipe import TrainSpec
from .tasks import CLASSIFICATION
from .updates import EMA, FisherMaskedEMA

METHODS = ("source", "bn-adapt", "mean-teacher", "psmt")


@dataclass
class StreamResult:
    method: str
    online_accuracy: float
    per_corruption: dict[str, float]
    batches: list[tuple[str, float]] = field(default_factory=list)
    clean_before: float | None = None
    clean_after: float | None = None


def symmetric_ce(student_logits: Tensor, teacher_logits: Tensor, a: float = 0.5) -> Tensor:
    """Per-example ``−(1−a)·Σ p_t log p_s − a·Σ p_s log p_t`` (PSMT's SCE; the teacher side
    carries no gradient)."""
    p_t = F.softmax(teacher_logits.detach(), -1)
    log_p_t = F.log_softmax(teacher_logits.detach(), -1)
    p_s, log_p_s = F.softmax(student_logits, -1), F.log_softmax(student_logits, -1)
    return -(1 - a) * (p_t * log_p_s).sum(-1) - a * (p_s * log_p_t).sum(-1)


def source_fisher(model: nn.Module, x: Tensor, batch_size: int = 64) -> dict[str, Tensor]:
    """Diagonal Fisher ``F_i = mean over batches of (∂ CE(f(x), argmax f(x)) / ∂θ_i)²`` on
    source rows ``x`` (PSMT step 1), with the model in eval mode."""
    was = model.training
    model.eval()
    fisher = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    n_batches = 0
    for i in range(0, len(x), batch_size):
        model.zero_grad(set_to_none=True)
        out = model(x[i:i + batch_size])
        F.cross_entropy(out, out.argmax(-1)).backward()
        for n, p in model.named_parameters():
            if p.grad is not None:
                fisher[n] += p.grad.detach().pow(2)
        n_batches += 1
    model.zero_grad(set_to_none=True)
    model.train(was)
    return {n: f / max(n_batches, 1) for n, f in fisher.items()}


@torch.no_grad()
def _accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    was = model.training
    model.eval()
    acc = float((model(x).argmax(-1) == y).double().mean())
    model.train(was)
    return acc


def adapt_stream(model: nn.Module, stream: Iterable[tuple[Tensor, Tensor, str]], *,
                 method: Literal["source", "bn-adapt", "mean-teacher", "psmt"] = "mean-teacher",
                 input_shape=(8, 8), lr: float = 1e-3, decay: float = 0.999,
                 fisher_weight: float = 500.0, fraction: float = 0.03,
                 source_x: Tensor | None = None, clean: tuple[Tensor, Tensor] | None = None,
                 augment: Augment | None = None, seed: int = 0) -> StreamResult:
    """Adapt a copy of ``model`` along ``stream`` (batches ``(x, y, corruption)``; ``y`` is
    only used to score the online predictions). ``source_x``: source rows for PSMT's Fisher;
    ``clean``: ``(x, y)`` scored before and after the stream. The given model is unchanged.

    The adapting methods (``mean-teacher``, ``psmt``) run on the engine's one loop
    (:func:`mentor.engine.loop.run_training`): one epoch whose steps are the stream's batches
    (:class:`StreamFeed`), Adam, and the teacher moved by the method's updater after each
    step (an EMA, or PSMT's Fisher-masked EMA, which reads the step's squared gradients)."""
    if method not in METHODS:
        raise MentorError(f"tta method {method!r} is unknown; expected one of "
                          f"{', '.join(METHODS)}")
    check_param("tta", "lr", lr, low=0, low_open=True)
    check_param("tta", "decay", decay, low=0, high=1)
    student = copy.deepcopy(model)
    clean_before = _accuracy(student, *clean) if clean is not None else None
    if method == "psmt" and source_x is None:
        raise MentorError("tta method 'psmt' needs source_x (source rows) for its Fisher "
                          "information")
    score = _OnlineScore()
    if method in ("source", "bn-adapt"):
        for x, y, name in stream:  # bn-adapt: batch statistics, running update
            score.add(name, _predict(student, x, train_mode=method == "bn-adapt"), y)
        final = student
    else:
        final = _adapt(student, list(stream), score, method=method, input_shape=input_shape,
                       lr=lr, decay=decay, fisher_weight=fisher_weight, fraction=fraction,
                       source_x=source_x, augment=augment, seed=seed)
    clean_after = _accuracy(final, *clean) if clean is not None else None
    return StreamResult(method, score.total(), score.per_corruption(), score.batches,
                        clean_before, clean_after)


class _OnlineScore:
    """Online accuracy: every batch's predictions scored as they are made."""

    def __init__(self):
        self.right: dict[str, float] = {}
        self.seen: dict[str, float] = {}
        self.batches: list[tuple[str, float]] = []

    def add(self, name: str, pred: Tensor, y: Tensor) -> None:
        correct = (pred == y).double()
        self.right[name] = self.right.get(name, 0.0) + float(correct.sum())
        self.seen[name] = self.seen.get(name, 0.0) + float(len(y))
        self.batches.append((name, float(correct.mean())))

    def per_corruption(self) -> dict[str, float]:
        return {k: self.right[k] / self.seen[k] for k in self.right}

    def total(self) -> float:
        return sum(self.right.values()) / max(sum(self.seen.values()), 1)


def _adapt(student: nn.Module, stream: list, score: _OnlineScore, *, method, input_shape, lr,
           decay, fisher_weight, fraction, source_x, augment, seed) -> nn.Module:
    """Run the mean teacher (or PSMT) along ``stream`` on the engine's loop; return the
    teacher, whose predictions were the online ones."""
    if not stream:
        return student
    teacher = copy.deepcopy(student).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    updater = FisherMaskedEMA(decay, fraction=fraction) if method == "psmt" else EMA(decay)
    fisher = anchor = None
    if method == "psmt":
        fisher = source_fisher(student, source_x)
        anchor = {n: p.detach().clone() for n, p in student.named_parameters()}
    spec = TrainSpec(epochs=1, batch_size=1, lr=lr, optimizer="adam", select="last")
    tr = prepare_training(student, spec, seed, task=CLASSIFICATION,
                          updater=UpdaterHooks(updater), steps_per_epoch=len(stream),
                          total_steps=len(stream), checkpoint_dir=None)
    tr.teacher = TeacherSide(signal=None, module=teacher, views=None)
    tr.feed = StreamFeed(tr, stream, teacher, score,
                         augment or Augment(default_views(input_shape)["weak"], input_shape),
                         seed, fisher, anchor, fisher_weight)
    run_training(tr)
    return teacher


class StreamFeed:
    """The step feed of test-time adaptation (the contract :class:`mentor.contracts.StepFeed`):
    one step per stream batch. The teacher predicts the batch (scored online), then the
    student learns the teacher's distribution on the batch and on an augmented view of it,
    ``½·(SCE(s(x), t(x)) + SCE(s(aug x), t(x)))``, plus PSMT's Fisher-weighted pull to the
    source weights when ``fisher`` is given. No validation: the stream has no labels to
    select by (the last weights are the result)."""

    def __init__(self, tr, stream: list, teacher: nn.Module, score: _OnlineScore,
                 augment: Augment, seed: int, fisher, anchor, fisher_weight: float):
        self.tr, self.stream, self.teacher, self.score = tr, stream, teacher, score
        self.augment, self.seed = augment, seed
        self.fisher, self.anchor, self.fisher_weight = fisher, anchor, fisher_weight

    def steps_in(self, epoch: int) -> int:
        return len(self.stream)

    def new_history(self) -> dict[str, list]:
        return {"epoch": [], "train_loss": [], f"val_{self.tr.task.metric}": []}

    def steps(self, p, epoch: int):
        for x, y, name in self.stream[p.batch:]:
            student = self.tr.model
            student.train()
            with torch.no_grad():
                t_out = self.teacher(x)
            self.score.add(name, t_out.argmax(-1), y)
            x_aug = self.augment(x, role_generator(self.seed, p.step, 2))
            yield [self._micro(student, x, x_aug, t_out, p.step)]

    def _micro(self, student, x, x_aug, t_out, step):
        def micro():
            loss = 0.5 * (symmetric_ce(student(x), t_out).mean()
                          + symmetric_ce(student(x_aug), t_out).mean())
            if self.fisher is not None:
                loss = loss + self.fisher_weight * sum(
                    (self.fisher[n] * (q - self.anchor[n]).pow(2)).sum()
                    for n, q in self.tr.raw_model.named_parameters())

            def fault():
                raise TrainingFault(f"the test-time adaptation loss became non-finite at "
                                    f"stream batch {step + 1}")
            return loss, loss.detach(), fault
        return micro

    def validate(self, model) -> None:
        return None

    def epoch_summary(self, p) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict[str, Tensor]:
        return {}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        return None


def _predict(model: nn.Module, x: Tensor, train_mode: bool) -> Tensor:
    model.train(train_mode)
    with torch.no_grad():
        out = model(x)
    model.eval()
    return out.argmax(-1)
