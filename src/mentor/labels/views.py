"""Reproducible views: augmentations regenerated exactly from ``(sample_id, view_id)``.

A view is an augmentation with its parameters drawn once, for every sample and view, from a
generator seeded with the view seed: ``table(n)`` is ``torch.rand(n, views, P)`` in that
order, so the store only needs to record the augmentation's name, parameters, seed and view
count to regenerate the input the teacher saw (FKD's region soft labels, METHODS.md §15).

Augmentations are tensor ops on flat rows (mentor's data layout); ``input_shape`` tells how
a row is laid out: ``(H, W)`` images, ``(C, H, W)`` images, or ``(L,)`` / ``(C, L)`` signals.
Registered augmentations (``mentor.registry.AUGMENTS``) take the rows, their uniform draws
``u`` ``(B, P)``, the input shape and their parameters.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import MentorError, check_param
from ..registry import AUGMENTS


def _as_maps(x: Tensor, input_shape: tuple[int, ...]) -> tuple[Tensor, bool]:
    """Flat rows -> (B, C, H, W); True when the rows are 1-D signals (H = 1)."""
    shape = tuple(input_shape)
    if len(shape) == 1:
        return x.reshape(len(x), 1, 1, shape[0]), True
    if len(shape) == 2:  # (H, W) image; a (C, L) signal would need channels first: see below
        return x.reshape(len(x), 1, *shape), False
    if len(shape) == 3:
        return x.reshape(len(x), *shape), False
    raise MentorError(f"augmentation: input shape {shape} is not supported; expected (L,), "
                      "(H, W) or (C, H, W)")


@AUGMENTS.register("crop", description="random resized crop (square in area fraction "
                   "[scale_min, scale_max]), resized back by bilinear sampling; optional "
                   "horizontal flip", paper="FKD / FerKD region crops, METHODS.md §15")
def crop(x: Tensor, u: Tensor, input_shape: tuple[int, ...], *, scale_min: float = 0.3,
         scale_max: float = 1.0, flip: bool = False) -> Tensor:
    """Crop a box of area fraction ``a ~ U[scale_min, scale_max]`` at a uniform position and
    resize it to the full size. 1-D signals crop a segment of length fraction ``a``."""
    maps, one_d = _as_maps(x, input_shape)
    area = scale_min + (scale_max - scale_min) * u[:, 0]
    side = area if one_d else area.sqrt()
    cx = (2 * u[:, 1] - 1) * (1 - side)
    cy = torch.zeros_like(cx) if one_d else (2 * u[:, 2] - 1) * (1 - side)
    sx = side * torch.where(u[:, 3] < 0.5, -1.0, 1.0) if flip else side
    sy = torch.ones_like(side) if one_d else side
    theta = torch.zeros(len(x), 2, 3, dtype=maps.dtype, device=maps.device)
    theta[:, 0, 0], theta[:, 0, 2] = sx.to(maps.dtype), cx.to(maps.dtype)
    theta[:, 1, 1], theta[:, 1, 2] = sy.to(maps.dtype), cy.to(maps.dtype)
    grid = F.affine_grid(theta, list(maps.shape), align_corners=False)
    out = F.grid_sample(maps, grid, mode="bilinear", padding_mode="border",
                        align_corners=False)
    return out.reshape(len(x), -1)


crop.draws = 4  # uniforms per view: area, x position, y position, flip


@AUGMENTS.register("identity", description="the input unchanged (one view per sample)")
def identity(x: Tensor, u: Tensor, input_shape: tuple[int, ...]) -> Tensor:
    return x


identity.draws = 0


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
