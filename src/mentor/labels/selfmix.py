"""SelfMix (FerKD, METHODS.md §15): CutMix between two stored views of the *same* sample.

For a row of the batch with probability ``prob``: a second view ``v2`` of the same sample is
regenerated, a box of area fraction ``lam ~ U[lam_min, lam_max]`` (a segment for 1-D signals)
is pasted from ``v2`` into the row's view ``v1``, and the teacher target becomes the
area-weighted mixture of the two views' (refined, e.g. FerKD-calibrated) distributions:
``p = (1 - lam_eff)·p1 + lam_eff·p2`` with ``lam_eff`` the pasted area actually covered.
Rows without the mix are unchanged. The draws are a pure function of ``(seed, step)``, so a
resumed run mixes exactly as an uninterrupted one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..contracts import Targets
from ..data.layout import paste_box  # noqa: F401  (SelfMix's box; re-exported)
from ..errors import check_param


class SelfMix:
    """The SelfMix mixer: ``mix(x1, x2, t1, t2, u)`` with the engine drawing ``v2``."""

    def __init__(self, prob: float = 0.5, lam_min: float = 0.2, lam_max: float = 0.5):
        check_param("selfmix", "prob", prob, low=0, high=1)
        check_param("selfmix", "lam_min", lam_min, low=0, high=1)
        check_param("selfmix", "lam_max", lam_max, low=lam_min, high=1)
        self.prob, self.lam_min, self.lam_max = float(prob), float(lam_min), float(lam_max)

    def draw(self, n_views: int, size: int, seed: int, step: int,
             v1: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Which rows mix, their second view (never the first one when there are two or
        more views) and the box uniforms; a pure function of ``(seed, step)``."""
        g = torch.Generator().manual_seed((seed * 1_000_033 + step * 7 + 3) % (2**63 - 1))
        on = torch.rand(size, generator=g) < self.prob
        shift = torch.randint(1, max(n_views, 2), (size,), generator=g)
        v2 = (v1.cpu() + shift) % n_views if n_views > 1 else v1.cpu().clone()
        u = torch.rand(size, 3, generator=g)
        return on, v2, u

    def mix(self, x1: Tensor, x2: Tensor, t1: Targets, t2: Targets, on: Tensor, u: Tensor,
            input_shape: tuple[int, ...], temperature: float = 1.0) -> tuple[Tensor, Targets]:
        mixed, area = paste_box(x1, x2, u, input_shape, self.lam_min, self.lam_max)
        on = on.to(x1.device)
        lam = torch.where(on, area, torch.zeros_like(area))
        x = torch.where(on.unsqueeze(1), mixed, x1)
        p1 = F.softmax(t1.logits / temperature, -1)
        p2 = F.softmax(t2.logits / temperature, -1)
        p = (1 - lam).unsqueeze(1) * p1 + lam.unsqueeze(1) * p2
        logits = temperature * p.clamp_min(1e-12).log()
        logits = torch.where(on.unsqueeze(1), logits, t1.logits)
        mask = t1.mask
        if t2.mask is not None:  # a mixed row needs both of its targets
            m2 = torch.where(on, t2.mask, torch.ones_like(t2.mask))
            mask = m2 if mask is None else mask & m2
        return x, t1.with_(logits=logits, mask=mask)
