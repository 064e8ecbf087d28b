"""Distribution alignment of pseudo-labels (ReMixMatch; SoftMatch's uniform alignment)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..contracts import Batch, Targets
from .._util.dist import cat_all
from ..errors import ParameterError, check_param
from ..registry import REFINERS
from .thresholds import _Stateful, unlabeled_rows


@REFINERS.register("distribution_alignment",
                   paper="Berthelot et al. 2020, ReMixMatch; Chen et al. 2023, SoftMatch "
                   "(uniform target)",
                   description="rescale unlabeled teacher probabilities by target / running "
                   "mean prediction, so pseudo-labels follow the target class distribution")
class DistributionAlignment(_Stateful):
    """``p̃ ∝ p · π / p̄`` on unlabeled rows, with ``p̄`` the EMA (momentum ``ema``) of the
    teacher's mean unlabeled prediction (set to the first batch's mean, then averaged) and
    ``π`` uniform (``target='uniform'``) or the labeled rows' class frequencies
    (``target='labeled'``). The aligned distribution replaces the teacher's logits (as log
    probabilities) and the pseudo-labels become its arg-max. Put it before a threshold: the
    threshold then judges aligned confidences, as in SoftMatch."""

    _state = ("p_model", "started")

    def __init__(self, ema: float = 0.999, target: str = "uniform"):
        check_param("distribution_alignment", "ema", ema, low=0, high=1, high_open=True)
        if target not in ("uniform", "labeled"):
            raise ParameterError(f"distribution_alignment.target must be 'uniform' or "
                                 f"'labeled', got {target!r}")
        self.m, self.target = float(ema), target
        self.p_model = self.started = torch.empty(0)
        self.p_target: Tensor | None = None

    def bind(self, labeled: Tensor, labels: Tensor, num_classes: int) -> None:
        if self.target == "labeled" and bool(labeled.any()):
            counts = torch.bincount(labels[labeled.to(labels.device)].cpu(),
                                    minlength=num_classes).double()
            self.p_target = (counts + 1e-6) / (counts + 1e-6).sum()
        else:
            self.p_target = torch.full((num_classes,), 1.0 / num_classes, dtype=torch.float64)
        self.p_model = torch.full((num_classes,), 1.0 / num_classes, dtype=torch.float64)
        self.started = torch.zeros((), dtype=torch.bool)

    def __call__(self, targets: Targets, batch: Batch) -> Targets:
        unl = unlabeled_rows(batch, len(targets.logits), targets.logits.device)
        probs = F.softmax(targets.logits.double(), -1)
        pu = cat_all(probs[unl]).cpu()  # the mean over every process's unlabeled rows
        if not len(pu):
            return targets
        mean = pu.mean(0)
        self.p_model = mean if not bool(self.started) else (
            self.m * self.p_model + (1 - self.m) * mean)
        self.started = torch.ones((), dtype=torch.bool)
        ratio = ((self.p_target + 1e-6) / (self.p_model + 1e-6)).to(probs.device)
        aligned = probs * ratio
        aligned = aligned / aligned.sum(-1, keepdim=True)
        logits = torch.where(unl[:, None], aligned.clamp_min(1e-12).log().to(targets.logits.dtype),
                             targets.logits)
        labels = torch.where(unl, aligned.argmax(-1), targets.labels)
        return targets.with_(logits=logits, labels=labels)
