"""Noisy-student input noise for feature frames (METHODS.md §3 LDA:
``augmenter:WeakStrongViews``; Xie et al., "Self-training with Noisy Student improves
ImageNet classification", CVPR 2020; Park et al., "SpecAugment", Interspeech 2019).

:func:`noisy_frames`: Gaussian frame noise (std ``std``), then ``time_masks`` time masks
(each a run of up to ``time_width`` frames set to zero, placed uniformly inside the
utterance's length) and ``feature_masks`` feature masks (each a band of up to
``feature_width`` feature channels set to zero over the whole utterance), as tensor ops,
every draw from ``generator``. Widths are drawn uniformly in ``0..width`` as in
SpecAugment; the defaults are this module's choices ``[reconstruction]``. Padding frames
(past ``lengths``) stay zero.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._util.args import non_negative, non_negative_int


def _band(count: int, width: int, size: Tensor, axis: int, generator) -> Tensor:
    """``(B, axis)`` mask: ``count`` bands of width ``U{0..width}`` starting uniformly in
    ``0..size_b - w``."""
    b = len(size)
    pos = torch.arange(axis)[None, :]
    mask = torch.zeros(b, axis, dtype=torch.bool)
    for _ in range(count):
        w = torch.randint(0, width + 1, (b,), generator=generator)
        w = torch.minimum(w, size)
        start = (torch.rand(b, generator=generator) * (size - w + 1)).floor().long()
        mask |= (pos >= start[:, None]) & (pos < (start + w)[:, None])
    return mask


def noisy_frames(frames: Tensor, lengths: Tensor, generator: torch.Generator, *,
                 std: float = 0.3, time_masks: int = 1, time_width: int = 3,
                 feature_masks: int = 1, feature_width: int = 3) -> Tensor:
    """``frames`` ``(B, T, D)`` with noise and masks (module docstring)."""
    non_negative("std", std)
    for name, v in (("time_masks", time_masks), ("time_width", time_width),
                    ("feature_masks", feature_masks), ("feature_width", feature_width)):
        non_negative_int(name, v)
    b, t, d = frames.shape
    within = (torch.arange(t)[None, :] < lengths[:, None])[..., None]
    out = frames + std * torch.randn(frames.shape, generator=generator) * within
    keep = ~_band(time_masks, time_width, lengths, t, generator)[..., None]
    keep = keep & ~_band(feature_masks, feature_width, torch.full((b,), d), d,
                         generator)[:, None, :]
    return out * keep
