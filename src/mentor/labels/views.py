"""Reproducible views: augmentations regenerated exactly from ``(sample_id, view_id)``.

A view is an augmentation with its parameters drawn once, for every sample and view, from a
generator seeded with the view seed: ``table(n)`` is ``torch.rand(n, views, P)`` in that
order, so the store only needs to record the augmentation's name, parameters, seed and view
count to regenerate the input the teacher saw (FKD's region soft labels, METHODS.md §15).

Augmentations are tensor ops on flat rows (mentor's data layout); ``input_shape`` tells how
a row is laid out: ``(H, W)`` images, ``(C, H, W)`` images, or ``(L,)`` / ``(C, L)`` signals.
Registered augmentations (``mentor.registry.AUGMENTS``, defined in
:mod:`mentor.data.augment`) take the rows, their uniform draws ``u`` ``(B, P)``, the input
shape and their parameters.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..errors import MentorError, check_param
from ..registry import AUGMENTS


class Views:
    """``views`` reproducible augmentations per sample (``augment`` with ``params``)."""

    def __init__(self, augment: str, views: int, seed: int, input_shape: tuple[int, ...],
                 params: dict[str, Any] | None = None):
        check_param("views", "views", views, low=1)
        self.fn = AUGMENTS.get(augment)
        self.augment, self.views, self.seed = augment, int(views), int(seed)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.params = dict(params or {})
        if augment == "crop":
            lo, hi = self.params.get("scale_min", 0.3), self.params.get("scale_max", 1.0)
            if not 0 < lo <= hi <= 1:
                raise MentorError(f"crop scale_min {lo} / scale_max {hi} are invalid; expected "
                                  "0 < scale_min <= scale_max <= 1")
        try:  # the augmentation must accept its parameters and the input layout
            self.fn(torch.zeros(1, math.prod(self.input_shape)),
                    torch.zeros(1, max(self.draws, 1)), self.input_shape,
                    **self.params)
        except TypeError as e:
            raise MentorError(f"augmentation {augment!r} rejects parameters {self.params}: "
                              f"{e}") from None
        self._table: Tensor | None = None

    @property
    def draws(self) -> int:
        from ..data.augment import draws_for
        return draws_for(self.fn, self.input_shape)

    def table(self, n: int) -> Tensor:
        """Uniform draws ``(n, views, P)``: the whole randomness of every view. The generator
        fills the table in order, so row ``i`` is the same for every ``n > i``."""
        if self._table is None or len(self._table) != n:
            g = torch.Generator().manual_seed(self.seed)
            self._table = torch.rand(n, self.views, max(self.draws, 1), generator=g)
        return self._table

    def apply(self, x: Tensor, sample_ids: Tensor, view_ids: Tensor, n: int) -> Tensor:
        """The views ``view_ids`` of rows ``x`` (samples ``sample_ids`` of a set of ``n``)."""
        u = self.table(n)[sample_ids.cpu().long(), view_ids.cpu().long()].to(x.device)
        return self.fn(x, u, self.input_shape, **self.params)

    def describe(self) -> dict[str, Any]:
        return {"augment": self.augment, "params": self.params, "seed": self.seed,
                "views": self.views, "input_shape": list(self.input_shape)}

    @classmethod
    def from_manifest(cls, d: dict[str, Any]) -> "Views":
        return cls(d["augment"], d["views"], d["seed"], tuple(d["input_shape"]),
                   d.get("params"))
