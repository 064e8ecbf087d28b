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
data before and after the stream (forgetting).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Iterable, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .data.augment import Augment, default_views, role_generator
from .errors import MentorError, check_param
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
    ``clean``: ``(x, y)`` scored before and after the stream. The given model is unchanged."""
    if method not in METHODS:
        raise MentorError(f"tta method {method!r} is unknown; expected one of "
                          f"{', '.join(METHODS)}")
    check_param("tta", "lr", lr, low=0, low_open=True)
    check_param("tta", "decay", decay, low=0, high=1)
    student = copy.deepcopy(model)
    clean_before = _accuracy(student, *clean) if clean is not None else None
    teacher = optimizer = updater = fisher = anchor = None
    if method in ("mean-teacher", "psmt"):
        teacher = copy.deepcopy(student).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        optimizer = torch.optim.Adam(student.parameters(), lr=lr, betas=(0.9, 0.999))
        updater = (FisherMaskedEMA(decay, fraction=fraction) if method == "psmt"
                   else EMA(decay))
        augment = augment or Augment(default_views(input_shape)["weak"], input_shape)
    if method == "psmt":
        if source_x is None:
            raise MentorError("tta method 'psmt' needs source_x (source rows) for its Fisher "
                              "information")
        fisher = source_fisher(student, source_x)
        anchor = {n: p.detach().clone() for n, p in student.named_parameters()}
    per: dict[str, list[float]] = {}
    batches: list[tuple[str, float]] = []
    step = 0
    for x, y, name in stream:
        if method == "source":
            pred = _predict(student, x, train_mode=False)
        elif method == "bn-adapt":
            pred = _predict(student, x, train_mode=True)  # batch statistics, running update
        else:
            student.train()
            with torch.no_grad():
                t_out = teacher(x)
            pred = t_out.argmax(-1)
            x_aug = augment(x, role_generator(seed, step, 2))
            loss = 0.5 * (symmetric_ce(student(x), t_out).mean()
                          + symmetric_ce(student(x_aug), t_out).mean())
            if fisher is not None:
                loss = loss + fisher_weight * sum(
                    (fisher[n] * (p - anchor[n]).pow(2)).sum()
                    for n, p in student.named_parameters())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if isinstance(updater, FisherMaskedEMA):
                updater.observe_gradients(student)
            optimizer.step()
            step += 1
            updater.update(teacher, student, step)
        correct = (pred == y).double()
        per.setdefault(name, []).append(float(correct.sum()))
        batches.append((name, float(correct.mean())))
        per.setdefault(f"#{name}", []).append(float(len(y)))
    names = [k for k in per if not k.startswith("#")]
    per_corruption = {k: sum(per[k]) / sum(per[f"#{k}"]) for k in names}
    total = sum(sum(per[k]) for k in names) / max(sum(sum(per[f"#{k}"]) for k in names), 1)
    final = teacher if teacher is not None else student
    clean_after = _accuracy(final, *clean) if clean is not None else None
    return StreamResult(method, total, per_corruption, batches, clean_before, clean_after)


def _predict(model: nn.Module, x: Tensor, train_mode: bool) -> Tensor:
    model.train(train_mode)
    with torch.no_grad():
        out = model(x)
    model.eval()
    return out.argmax(-1)
