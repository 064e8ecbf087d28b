"""FerKD's calibration of unreliable soft labels (METHODS.md §15).

Within a batch, labeled rows are ranked by the teacher's probability of their true class.
The lowest ``discard`` fraction is dropped (hard-region mining: no teacher target), the next
``calibrate`` fraction gets the softened hard label ``(1 − ε)·onehot(y) + ε/C`` instead of
the teacher's soft label, and the rest keep the teacher's soft label. Rows without a visible
label are left as they are. The bands and ε follow METHODS.md's suggested defaults (bottom 5 %
dropped, next 15 % calibrated, ε = 0.1), tagged [recon] there: the paper's thresholds are not
public.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..contracts import Batch, Targets
from ..errors import check_param
from ..registry import REFINERS


@REFINERS.register("ferkd_calibration", paper="FerKD [recon of thresholds]",
                   description="drop the least reliable teacher targets, replace the next band "
                   "with softened hard labels")
class FerKDCalibration:
    def __init__(self, discard: float = 0.05, calibrate: float = 0.15, epsilon: float = 0.1):
        check_param("ferkd_calibration", "discard", discard, low=0, high=1)
        check_param("ferkd_calibration", "calibrate", calibrate, low=0, high=1)
        check_param("ferkd_calibration", "epsilon", epsilon, low=0, high=1)
        if discard + calibrate > 1:
            check_param("ferkd_calibration", "discard + calibrate", discard + calibrate, high=1)
        self.discard, self.calibrate, self.epsilon = discard, calibrate, epsilon

    def __call__(self, targets: Targets, batch: Batch) -> Targets:
        labeled = batch.labeled
        rows = (torch.arange(len(batch.y), device=batch.y.device) if labeled is None
                else labeled.nonzero().squeeze(-1))
        n = len(rows)
        if n == 0:
            return targets
        logits = targets.logits
        c = logits.shape[-1]
        y = batch.y[rows]
        p_true = F.softmax(logits[rows], -1).gather(-1, y[:, None]).squeeze(-1)
        order = rows[p_true.argsort(stable=True)]  # least reliable first
        n_drop = int(math.floor(self.discard * n))
        n_cal = int(math.floor(self.calibrate * n))
        drop, cal = order[:n_drop], order[n_drop:n_drop + n_cal]
        new_logits = logits.clone()
        if n_cal:
            soft = torch.full((n_cal, c), self.epsilon / c, dtype=logits.dtype,
                              device=logits.device)
            soft.scatter_add_(1, batch.y[cal][:, None],
                              torch.full((n_cal, 1), 1.0 - self.epsilon, dtype=logits.dtype,
                                         device=logits.device))
            new_logits[cal] = soft.clamp_min(1e-12).log()
        mask = targets.mask.clone() if targets.mask is not None else torch.ones(
            len(logits), dtype=torch.bool, device=logits.device)
        mask[drop] = False
        return targets.with_(logits=new_logits, mask=mask)
