"""Weighted objectives: a registered loss, its parameters, which rows it sees, its weight."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

import torch
from torch import Tensor

from ..contracts import Batch, Targets
from .base import LossSpec
from .logits import standardized
from ..registry import LOSSES


@dataclass
class Objective:
    """``weight · mean over selected rows of loss(student_logits, targets, labels)``.

    ``rows``: ``"labeled"`` (rows whose label the student may see), ``"unlabeled"`` (the
    others: semi-supervised losses) or ``"all"``.
    ``standardize``: apply logit standardization to both logit inputs (LS-KD).
    ``warmup_epochs``: weight ramps as ``min(epoch / warmup_epochs, 1)`` with 1-based epochs
    (DKD's warm-up as in the official mdistiller code).
    ``on``: which student output the loss reads (``"logits"``, ``"head:<name>"`` of a
    multi-head student, ``"feat:<name>"`` of a feature tap); ``against``: which teacher output
    (``"logits"`` or ``"feat:<name>"``), or ``"head:<name>"`` for one of the student's own
    outputs, detached (self-distillation; ``"head:logits"`` is the main output).
    ``normalize``: a refiner's mask averages the loss over the admitted rows
    (``"admitted"``) or counts rejected rows as zeros in the mean over the selected rows
    (``"rows"``: FixMatch's ``mean(mask · CE)`` over the unlabeled batch).
    """

    loss: str
    weight: float = 1.0
    params: dict[str, Any] = field(default_factory=dict)
    rows: Literal["labeled", "unlabeled", "all"] = "all"
    standardize: bool = False
    warmup_epochs: int = 0
    on: str = "logits"
    against: str = "logits"
    normalize: Literal["admitted", "rows"] = "admitted"

    def __post_init__(self):
        spec: LossSpec = LOSSES.get(self.loss)
        self.params = spec.check(self.params)  # checked once here, not on every step
        self.spec = spec
        fn, mean_fn = spec.impl, spec.mean_impl
        if self.standardize:
            if not spec.logit_loss or not spec.needs_teacher:
                from ..errors import ParameterError
                raise ParameterError(f"standardize applies to teacher logit losses; {self.loss!r} "
                                     "is not one")
            fn = standardized(fn)
            mean_fn = standardized(mean_fn) if mean_fn is not None else None
        self.fn = fn
        self.mean_fn = mean_fn
        # a target read from one of the student's own heads (self-distillation) needs no teacher
        self.self_target = self.against.startswith("head:")
        self.needs_teacher = spec.needs_teacher and not self.self_target
        self.needs_labels = spec.needs_labels

    def weight_at(self, epoch: int) -> float:
        """Weight at 0-based ``epoch``."""
        if self.warmup_epochs > 0:
            return self.weight * min((epoch + 1) / self.warmup_epochs, 1.0)
        return self.weight

    def __call__(self, outputs: Tensor | dict[str, Tensor], targets: Targets | None,
                 batch: Batch, scale: float = 1.0) -> Tensor:
        """``scale`` times the objective's value (the weighted sum passes the weight: a
        loss's fused mean takes it into its own scalar factor)."""
        logits = outputs[self.on] if type(outputs) is dict else outputs
        if self.self_target:
            t_logits = outputs["logits" if self.against == "head:logits"
                               else self.against].detach()
            targets = None
        elif targets is None:
            t_logits = None
        elif self.against == "logits":
            t_logits = targets.logits
        else:
            t_logits = targets.extra[self.against]
        mask = targets.mask if targets is not None and self.needs_teacher else None
        weight = targets.weight if targets is not None and self.needs_teacher else None
        selects = self.rows != "all" and (batch.labeled is not None or self.rows == "unlabeled")
        if mask is None and weight is None and not selects:
            labels = batch.y if self.rows == "labeled" or targets is None else targets.labels
            if self.mean_fn is not None:  # the mean in one fused call, scaled inside
                return self.mean_fn(logits, t_logits, labels, scale=scale, **self.params)
            value = self.fn(logits, t_logits, labels, **self.params).mean()
        else:
            value = self._masked(logits, t_logits, targets, batch, mask, weight, selects)
        return value if scale == 1.0 else scale * value

    def _masked(self, logits, t_logits, targets, batch, mask, weight, selects) -> Tensor:
        """The mean over the selected rows, weighted per row and masked by a refiner."""
        if selects:
            if batch.labeled is None:  # every row is labeled
                sel = torch.zeros(len(logits), dtype=torch.bool, device=logits.device)
            else:
                sel = batch.labeled if self.rows == "labeled" else ~batch.labeled
            if mask is not None and self.normalize == "admitted":
                sel = sel & mask
                mask = None
            elif mask is not None:
                mask = mask[sel]
            logits = logits[sel]
            source = batch.y if self.rows == "labeled" or targets is None else targets.labels
            labels = source[sel]
            t_logits = t_logits[sel] if t_logits is not None else None
            weight = weight[sel] if weight is not None else None
        else:
            labels = batch.y if self.rows == "labeled" or targets is None else targets.labels
        values = self.fn(logits, t_logits, labels, **self.params)
        if weight is not None:
            values = values * weight
        if mask is not None:
            m = mask.to(values.dtype)
            if self.normalize == "rows":
                return (values * m).sum() / max(len(values), 1)
            return (values * m).sum() / m.sum().clamp_min(1.0)
        if values.numel() == 0:
            return values.sum()
        return values.mean()

    def describe(self) -> str:
        ps = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in self.params.items())
        ls = "LS " if self.standardize else ""
        return f"{self.weight:g}*{ls}{self.loss}({ps})"


def weighted_sum(objectives: Sequence[Objective], outputs: Tensor | dict[str, Tensor],
                 targets: Targets | None, batch: Batch, epoch: int) -> Tensor:
    """The training loss of a batch: ``sum_i weight_i(epoch) * objective_i`` (an objective of
    weight 0 at this epoch is not computed; with none left, a zero that keeps the graph)."""
    total = None
    for obj in objectives:
        w = obj.weight_at(epoch) if obj.warmup_epochs > 0 else obj.weight
        if w == 0.0:
            continue
        term = obj(outputs, targets, batch, w)
        total = term if total is None else total + term
    if total is None:
        total = (outputs["logits"] if type(outputs) is dict else outputs).sum() * 0.0
    return total


def probe_objectives(objectives, example: tuple[Tensor, Any], elements=None) -> None:
    """Run every objective once on the task's ``example`` (zero outputs and labels of two
    rows, :meth:`~mentor.contracts.TaskAdapter.example`), read as the task's ``elements``
    (:meth:`~mentor.contracts.TaskAdapter.elements`; ``None``: rows as they are), so
    parameters that depend on the output size (e.g. ``topk_kd.k`` and the class count) fail
    before any training or writing."""
    zeros, labels = example
    batch = Batch(zeros, labels, torch.arange(2), None)
    targets = Targets(zeros, labels)
    if elements is not None:
        zeros, targets, batch = elements(zeros, targets, batch)
    for obj in objectives:
        if obj.on == "logits" and obj.against == "logits":
            try:
                obj(zeros, targets if obj.needs_teacher else None, batch)
            except ArithmeticError as e:  # e.g. temperature 1e300: T**2 overflows a float
                from ..errors import MentorError
                why = e.args[-1] if e.args else type(e).__name__
                raise MentorError(f"objective {obj.describe()} cannot be computed ({why}); "
                                  "expected parameters of a usable size") from None
