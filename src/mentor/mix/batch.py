"""Batch mixers: rebuild a training batch from mixed labeled and unlabeled rows, with the
targets the losses need (METHODS.md §59.7: a region mixer returns the mixed input *and* its
region weights).

:class:`CopyPasteBatch` is BCP's self-training step for classification (Bai et al. 2023,
METHODS.md §29): each labeled row ``l`` is paired with an unlabeled row ``u``; the batch
becomes the labeled rows (cross-entropy on their labels) plus ``x_in = u⊙M + l⊙(1−M)`` and
``x_out = l⊙M + u⊙(1−M)``. A mixed row's target is the mixture of the labeled row's label and
the unlabeled row's (refined) pseudo-label, each weighted by the area it covers times its
region weight (1 for ground truth, ``u_weight`` for pseudo-labels, BCP's 0.5):
``w_l·CE(y_l) + w_u·CE(ŷ_u)`` is carried as a soft target ``q ∝ w_l·1[y_l] + w_u·1[ŷ_u]``
with row weight ``w_l + w_u`` (a KD loss at T 1 on ``q`` has the same gradient). A
pseudo-label the refiners rejected contributes nothing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..contracts import Batch, Targets
from ..errors import check_param
from .mixers import BidirectionalCopyPaste, MultiScalePatches, mixed_label_weights


class CopyPasteBatch:
    """``mix(x, batch, targets, generator, input_shape) -> (x, batch, targets)``; with
    ``scales='multi'`` the mask is Switch's multiscale patches (METHODS.md §35)."""

    def __init__(self, ratio: float = 2 / 3, u_weight: float = 0.5, scales: str = "single"):
        check_param("bcp", "u_weight", u_weight, low=0)
        self.mixer = (BidirectionalCopyPaste(ratio) if scales == "single"
                      else MultiScalePatches())
        self.u_weight = float(u_weight)

    def mix(self, x: Tensor, batch: Batch, targets: Targets, g: torch.Generator,
            input_shape) -> tuple[Tensor, Batch, Targets]:
        if batch.labeled is None:
            return x, batch, targets
        lab = batch.labeled.nonzero().squeeze(-1)
        unl = (~batch.labeled).nonzero().squeeze(-1)
        k = min(len(lab), len(unl))
        if k == 0:
            return x, batch, targets
        li, ui = lab[:k], unl[:k]
        cp = self.mixer.mix(x[li], x[ui], tuple(input_shape), g)
        c = targets.logits.shape[-1]
        y_l = F.one_hot(batch.y[li], c).to(targets.logits.dtype)
        y_u = F.one_hot(targets.labels[ui], c).to(targets.logits.dtype)
        keep = torch.ones(k, dtype=y_u.dtype, device=y_u.device)
        if targets.mask is not None:
            keep = keep * targets.mask[ui].to(keep.dtype)
        if targets.weight is not None:
            keep = keep * targets.weight[ui].to(keep.dtype)
        rows_q, rows_w = [], []
        for from_labeled in (False, True):  # x_in, then x_out
            w_l, w_u = mixed_label_weights(cp.area.to(keep.dtype), from_labeled, self.u_weight)
            w_u = w_u * keep
            q = w_l[:, None] * y_l + w_u[:, None] * y_u
            total = q.sum(-1)
            rows_q.append(q / total.clamp_min(1e-12)[:, None])
            rows_w.append(total)
        q = torch.cat(rows_q)
        n_lab = len(lab)
        new_x = torch.cat([x[lab], cp.x_in, cp.x_out])
        labeled = torch.cat([torch.ones(n_lab, dtype=torch.bool, device=x.device),
                             torch.zeros(2 * k, dtype=torch.bool, device=x.device)])
        y = torch.cat([batch.y[lab], torch.full((2 * k,), -1, dtype=batch.y.dtype,
                                                device=batch.y.device)])
        index = torch.cat([batch.index[lab], batch.index[ui], batch.index[ui]])
        logits = torch.cat([targets.logits[lab], q.clamp_min(1e-12).log()])
        labels = torch.cat([batch.y[lab], q.argmax(-1)])
        weight = torch.cat([torch.ones(n_lab, dtype=q.dtype, device=q.device), *rows_w])
        new_batch = Batch(new_x, y, index, labeled, batch.epoch, batch.step)
        return new_x, new_batch, Targets(logits, labels, None, weight)
