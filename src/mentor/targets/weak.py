"""Weak labels refined by a teacher (QUEACO, METHODS.md §12 [recon of the rule])."""

from __future__ import annotations

import torch

from ..contracts import Batch, Targets
from ..errors import check_param
from ..registry import REFINERS
from .thresholds import confidence, hard_logits, unlabeled_rows


@REFINERS.register("weak_label", paper="QUEACO: the teacher overrides weak "
                   "labels where it is confident [recon of the exact rule]",
                   description="rows of the weakly-labeled pool keep their weak label unless "
                   "the teacher predicts another class with confidence >= threshold")
class WeakLabelRefiner:
    """For unlabeled rows with a weak label (``batch.weak_y >= 0``): the target is the
    teacher's class where its confidence is ``>= threshold`` and it disagrees, else the weak
    label, as a hard (one-hot) target; these rows are admitted. Rows without a weak label
    are left to the other refiners. ``threshold > 1`` keeps every weak label (the
    weak-labels-only baseline). ``overridden`` counts the replaced labels of the last batch."""

    def __init__(self, threshold: float = 0.9):
        check_param("weak_label", "threshold", threshold, low=0)
        self.threshold = float(threshold)
        self.overridden = 0

    def __call__(self, targets: Targets, batch: Batch) -> Targets:
        if batch.weak_y is None:
            return targets
        unl = unlabeled_rows(batch, len(targets.logits), targets.logits.device)
        weak = batch.weak_y.to(targets.labels.device)
        has = unl & (weak >= 0)
        if not bool(has.any()):
            return targets
        _, conf, pred = confidence(targets)
        override = has & (conf >= self.threshold) & (pred != weak)
        self.overridden = int(override.sum())
        chosen = torch.where(override, pred, weak)
        labels = torch.where(has, chosen, targets.labels)
        c = targets.logits.shape[-1]
        logits = torch.where(has[:, None], hard_logits(labels.clamp_min(0), c,
                                                       targets.logits.dtype), targets.logits)
        mask = targets.mask
        if mask is not None:
            mask = mask | has
        return targets.with_(logits=logits, labels=labels, mask=mask)
