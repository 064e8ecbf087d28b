"""Prototype soft labels for uncertain teacher targets (PS-TTL, METHODS.md §21).

Per-class prototypes are running means of the teacher's features of rows whose label the
student may see (``P_c ← m·P_c + (1 − m)·mean of the batch's class-c features``). Rows
without a visible label are split by the teacher's confidence (its maximum probability):
at or above ``high`` they keep the teacher's target, between ``low`` and ``high`` they get the
prototype soft label ``softmax(κ · cos(f, P))`` (returned as logits ``κ · cos``), below
``low`` they carry no target. Defaults follow the official code (κ 10, m 0.5, band 0.5–0.9);
PS-TTL uses hard labels above the band, mentor keeps the teacher's soft target there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..contracts import Batch, Targets
from ..errors import MentorError, check_param
from ..registry import REFINERS


@REFINERS.register("prototype_soft_labels", paper="PS-TTL (prototype soft labels)",
                   description="uncertain unlabeled rows get softmax(kappa*cos(feature, class "
                   "prototypes)) instead of the teacher's target")
class PrototypeSoftLabels:
    def __init__(self, feature: str, kappa: float = 10.0, momentum: float = 0.5,
                 low: float = 0.5, high: float = 0.9):
        check_param("prototype_soft_labels", "kappa", kappa, low=0, low_open=True)
        check_param("prototype_soft_labels", "momentum", momentum, low=0, high=1)
        check_param("prototype_soft_labels", "low", low, low=0, high=1)
        check_param("prototype_soft_labels", "high", high, low=low, high=1)
        self.feature, self.kappa, self.momentum = feature, kappa, momentum
        self.low, self.high = low, high
        self.reset()

    def reset(self) -> None:
        """Forget the prototypes (the engine calls this when a training run starts)."""
        self.prototypes: torch.Tensor | None = None  # (C, D)
        self.seen: torch.Tensor | None = None  # classes with a prototype
        self.last_counts: dict[str, int] = {}

    def _update(self, feats: torch.Tensor, labels: torch.Tensor, num_classes: int) -> None:
        if self.prototypes is None:
            self.prototypes = feats.new_zeros(num_classes, feats.shape[1])
            self.seen = torch.zeros(num_classes, dtype=torch.bool, device=feats.device)
        for c in labels.unique().tolist():
            mean = feats[labels == c].mean(0)
            if self.seen[c]:
                self.prototypes[c] = self.momentum * self.prototypes[c] + \
                    (1 - self.momentum) * mean
            else:
                self.prototypes[c], self.seen[c] = mean, True

    def __call__(self, targets: Targets, batch: Batch) -> Targets:
        if targets.extra is None or self.feature not in targets.extra:
            raise MentorError(f"prototype_soft_labels needs the teacher feature "
                              f"{self.feature!r}; the method must tap it")
        feats = targets.extra[self.feature].detach().flatten(1)
        logits = targets.logits
        c = logits.shape[-1]
        labeled = (torch.ones(len(logits), dtype=torch.bool, device=logits.device)
                   if batch.labeled is None else batch.labeled)
        if labeled.any():
            self._update(feats[labeled], batch.y[labeled], c)
        conf = F.softmax(logits, -1).amax(-1)
        middle = ~labeled & (conf >= self.low) & (conf < self.high)
        dropped = ~labeled & (conf < self.low)
        new_logits = logits
        if middle.any() and self.prototypes is not None:
            cos = F.cosine_similarity(feats[middle][:, None, :], self.prototypes[None], dim=-1)
            cos = cos.masked_fill(~self.seen[None], -1.0)  # classes without a prototype
            new_logits = logits.clone()
            new_logits[middle] = self.kappa * cos.to(logits.dtype)
        else:
            middle = torch.zeros_like(middle)
        mask = targets.mask if targets.mask is not None else torch.ones_like(labeled)
        self.last_counts = {"prototype": int(middle.sum()), "dropped": int(dropped.sum())}
        return targets.with_(logits=new_logits, mask=mask & ~dropped)
