"""How a flat row is laid out, and boxes on that layout: the geometry that augmentations,
mixers and SelfMix share (one place, so none of them imports another).

Rows are flat ``x`` ``(B, D)``; ``input_shape`` says how a row is laid out: ``(L,)`` a 1-D
signal (or tabular row), ``(H, W)`` an image, ``(C, H, W)`` an image with channels. Boxes
cover the spatial positions and every channel at once; on 1-D rows a box is a segment.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ..errors import MentorError


def row_grid(input_shape: Sequence[int], what: str = "augmentation") -> tuple[int, int, int]:
    """(channels, height, width) of a flat row laid out as ``input_shape``; 1-D rows are one
    channel of height 1. ``what`` names the caller in the error."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 1:
        return 1, 1, shape[0]
    if len(shape) == 2:
        return 1, shape[0], shape[1]
    if len(shape) == 3:
        return shape
    raise MentorError(f"{what}: input shape {shape} is not supported; expected (L,), "
                      "(H, W) or (C, H, W)")


def as_maps(x: Tensor, input_shape: Sequence[int]) -> tuple[Tensor, bool]:
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


def mixer_grid(input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """``(channels, H, W)`` of a row layout; 1-D rows are ``(1, 1, L)``."""
    return row_grid(input_shape, "mixer")


def check_rows(x: Tensor, input_shape: tuple[int, ...]) -> None:
    c, h, w = mixer_grid(input_shape)
    if x.dim() != 2 or x.shape[1] != c * h * w:
        raise MentorError(f"mixer: rows of shape {tuple(x.shape)} do not match input shape "
                          f"{tuple(input_shape)}; expected (B, {c * h * w})")


def rect_mask(h: int, w: int, bh, bw, y0: Tensor, x0: Tensor) -> Tensor:
    """``(B, H, W)`` bool: True inside the box ``[y0, y0+bh) × [x0, x0+bw)`` of each row."""
    b = len(y0)
    rows = torch.arange(h, device=y0.device).view(1, h, 1)
    cols = torch.arange(w, device=y0.device).view(1, 1, w)
    y0, x0 = y0.view(b, 1, 1), x0.view(b, 1, 1)
    bh = bh.view(b, 1, 1) if isinstance(bh, Tensor) else bh
    bw = bw.view(b, 1, 1) if isinstance(bw, Tensor) else bw
    return (rows >= y0) & (rows < y0 + bh) & (cols >= x0) & (cols < x0 + bw)


def spread_channels(region: Tensor, channels: int) -> Tensor:
    """``(B, H, W)`` spatial mask -> ``(B, D)`` row mask, the same for every channel."""
    b, h, w = region.shape
    return region.unsqueeze(1).expand(b, channels, h, w).reshape(b, -1)


def box_mask(u: Tensor, input_shape: tuple[int, ...], lam_min: float,
             lam_max: float) -> tuple[Tensor, Tensor]:
    """The box of :func:`paste_box`, as a mask.

    ``u`` ``(B, 3)`` are uniforms: area, x position, y position. The target area fraction is
    ``lam = lam_min + (lam_max - lam_min)·u0``; an image box has sides ``round(sqrt(lam)·H)``
    by ``round(sqrt(lam)·W)``, a segment (layouts with H = 1) has length ``round(lam·W)``; its corner is
    ``floor((H - bh)·u2), floor((W - bw)·u1)``. Returns ``mask`` ``(B, D)`` bool (True inside
    the box, every channel) and ``area`` ``(B,)``, the exact fraction of positions covered.
    """
    c, h, w = mixer_grid(input_shape)
    lam = lam_min + (lam_max - lam_min) * u[:, 0]
    if h == 1:
        bw = (lam * w).round().clamp(0, w)
        bh = torch.ones_like(bw)
    else:
        side = lam.sqrt()
        bh, bw = (side * h).round().clamp(0, h), (side * w).round().clamp(0, w)
    y0 = ((h - bh) * u[:, 2]).floor()
    x0 = ((w - bw) * u[:, 1]).floor()
    region = rect_mask(h, w, bh, bw, y0, x0)
    return spread_channels(region, c), region.flatten(1).float().mean(1)


def paste_box(x1: Tensor, x2: Tensor, u: Tensor, input_shape: tuple[int, ...],
              lam_min: float, lam_max: float) -> tuple[Tensor, Tensor]:
    """Paste a box of ``x2`` into ``x1`` (flat rows laid out as ``input_shape``); returns
    the mixed rows and the exact area fraction taken from ``x2`` per row. ``u`` ``(B, 3)``
    are uniforms: area, x position, y position (the box of :func:`box_mask`)."""
    mask, area = box_mask(u, tuple(input_shape), lam_min, lam_max)
    return torch.where(mask.to(x1.device), x2, x1), area.to(x1.device)
