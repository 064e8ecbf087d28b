"""Disparity metrics (METHODS.md §53 S³'s evaluation; Xu et al., "Unsupervised Stereo via
Multi-Baseline Geometry-Consistent Self-Training", arXiv 2508.10838): end-point error (EPE,
the mean absolute disparity error in pixels) and the bad-pixel rate (the fraction of pixels
whose absolute error exceeds ``threshold`` pixels, 1 by default), each over all pixels or
over the pixels a boolean ``mask`` selects -- e.g. the occluded or the non-occluded pixels
of the reference view. Sums run in float64.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import DataError, MentorError


def _errors(pred: Tensor, gt: Tensor, mask: Tensor | None) -> Tensor:
    if not torch.is_tensor(pred) or not torch.is_tensor(gt):
        raise DataError(f"pred and gt must be tensors, got {type(pred).__name__} and "
                        f"{type(gt).__name__}")
    if tuple(pred.shape) != tuple(gt.shape):
        raise DataError(f"the disparity map has shape {tuple(pred.shape)} but the ground "
                        f"truth has shape {tuple(gt.shape)}; expected the same shape")
    err = (pred.double() - gt.double()).abs()
    if mask is not None:
        if not torch.is_tensor(mask) or mask.dtype != torch.bool or \
                tuple(mask.shape) != tuple(gt.shape):
            raise DataError(f"mask has shape {tuple(getattr(mask, 'shape', ()))} and dtype "
                            f"{getattr(mask, 'dtype', None)}; expected a boolean "
                            f"{tuple(gt.shape)} like the ground truth")
        err = err[mask]
    if err.numel() == 0:
        raise DataError("mask selects no pixel; expected at least one pixel to score")
    if not torch.isfinite(err).all():
        raise DataError("the disparity map holds a non-finite value; expected finite "
                        "disparities")
    return err


def epe(pred: Tensor, gt: Tensor, mask: Tensor | None = None) -> float:
    """Mean ``|pred − gt|`` over the pixels of ``mask`` (all when None)."""
    return float(_errors(pred, gt, mask).mean())


def bad_pixel_rate(pred: Tensor, gt: Tensor, threshold: float = 1.0,
                   mask: Tensor | None = None) -> float:
    """The fraction of the pixels of ``mask`` (all when None) with ``|pred − gt| >
    threshold``."""
    if not float(threshold) >= 0:
        raise MentorError(f"threshold must be >= 0, got {threshold!r}")
    return float((_errors(pred, gt, mask) > float(threshold)).double().mean())


def region_metrics(pred: Tensor, gt: Tensor, occluded: Tensor,
                   threshold: float = 1.0) -> dict[str, float]:
    """``epe`` / ``bad`` over all pixels, ``epe_occ`` / ``bad_occ`` over the ``occluded``
    pixels and ``epe_noc`` / ``bad_noc`` over the others."""
    out = {}
    for suffix, mask in (("", None), ("_occ", occluded), ("_noc", None if occluded is None
                                                          else ~occluded)):
        out[f"epe{suffix}"] = epe(pred, gt, mask)
        out[f"bad{suffix}"] = bad_pixel_rate(pred, gt, threshold, mask)
    return out
