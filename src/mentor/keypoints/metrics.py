"""Target heatmaps and keypoint metrics (METHODS.md §60 ``KeypointHeatmap``: K heatmap
channels, MSE, PCK).

- :func:`gaussian_heatmaps`: one channel per keypoint, ``exp(-((u - x)² + (v - y)²) /
  (2σ²))`` at every pixel centre ``(u, v)`` (peak 1 at the keypoint, not normalised).
- :func:`argmax_keypoints`: the keypoint a heatmap channel says -- the pixel of its
  maximum (the first in row-major order on ties), optionally moved a quarter pixel along
  each axis towards the larger neighbour (the usual sub-pixel refinement of pose
  estimators; not at the border).
- :func:`pck`: Percentage of Correct Keypoints at ``alpha``: a predicted keypoint counts
  when its Euclidean distance to the truth is at most ``alpha × size``, ``size`` the
  image side (the *image* size, not a per-figure box: every TB-KPT figure has a similar
  extent). Default ``alpha`` 0.1: 2.4 px on a 24-pixel image.
- :func:`heatmap_mse`: mean squared difference per example over channels and pixels (the
  caller reduces over examples).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import DataError, MentorError


def _maps(name: str, h: Tensor) -> Tensor:
    if not torch.is_tensor(h) or h.dim() != 4 or not h.is_floating_point():
        raise DataError(f"{name} has shape {tuple(getattr(h, 'shape', ()))}; expected "
                        "(examples, keypoints, height, width) heatmaps")
    return h


def gaussian_heatmaps(keypoints: Tensor, size: int, sigma: float = 1.0) -> Tensor:
    """Heatmaps ``(N, K, size, size)`` of keypoints ``(N, K, 2)`` (``(x, y)`` pixels)."""
    if not torch.is_tensor(keypoints) or keypoints.dim() != 3 or keypoints.shape[-1] != 2:
        raise DataError(f"keypoints has shape {tuple(getattr(keypoints, 'shape', ()))}; "
                        "expected (examples, keypoints, 2) as (x, y)")
    if not float(sigma) > 0:
        raise MentorError(f"sigma must be > 0 pixels, got {sigma!r}")
    grid = torch.arange(size, dtype=keypoints.dtype)
    dx = grid.view(1, 1, 1, size) - keypoints[..., 0, None, None]
    dy = grid.view(1, 1, size, 1) - keypoints[..., 1, None, None]
    return torch.exp(-(dx ** 2 + dy ** 2) / (2 * float(sigma) ** 2))


def argmax_keypoints(heatmaps: Tensor, subpixel: bool = False) -> Tensor:
    """Keypoints ``(N, K, 2)`` as ``(x, y)`` from heatmaps ``(N, K, H, W)``."""
    h = _maps("heatmaps", heatmaps)
    n, k, hh, ww = h.shape
    flat = h.reshape(n, k, hh * ww).argmax(-1)
    y, x = flat // ww, flat % ww
    out = torch.stack([x, y], -1).to(h.dtype)
    if subpixel:
        hf = h.reshape(n * k, hh, ww)
        xi, yi = x.reshape(-1), y.reshape(-1)
        rows = torch.arange(n * k)
        ok_x = (xi > 0) & (xi < ww - 1)
        ok_y = (yi > 0) & (yi < hh - 1)
        right = hf[rows, yi, (xi + 1).clamp(max=ww - 1)]
        left = hf[rows, yi, (xi - 1).clamp(min=0)]
        down = hf[rows, (yi + 1).clamp(max=hh - 1), xi]
        up = hf[rows, (yi - 1).clamp(min=0), xi]
        sx = torch.where(ok_x, 0.25 * torch.sign(right - left), torch.zeros_like(right))
        sy = torch.where(ok_y, 0.25 * torch.sign(down - up), torch.zeros_like(down))
        out = out + torch.stack([sx, sy], -1).reshape(n, k, 2)
    return out


def pck(pred: Tensor, true: Tensor, size: int, alpha: float = 0.1) -> float:
    """The fraction of keypoints of ``pred`` ``(N, K, 2)`` within ``alpha × size`` pixels
    (Euclidean) of ``true``."""
    if not torch.is_tensor(pred) or not torch.is_tensor(true) or pred.shape != true.shape \
            or pred.dim() != 3 or pred.shape[-1] != 2:
        raise DataError(f"pred has shape {tuple(getattr(pred, 'shape', ()))}; expected "
                        f"{tuple(getattr(true, 'shape', ()))} like true: (examples, "
                        "keypoints, 2)")
    if not float(alpha) > 0:
        raise MentorError(f"alpha must be > 0, got {alpha!r}")
    if not pred.numel():
        raise DataError("pred holds no keypoint; expected at least one to score")
    dist = (pred.double() - true.double()).norm(dim=-1)
    return float((dist <= float(alpha) * size).double().mean())


def heatmap_mse(pred: Tensor, target: Tensor) -> Tensor:
    """Per-example mean squared difference ``(N,)`` of heatmaps ``(N, K, H, W)``."""
    p, t = _maps("pred", pred), _maps("target", target)
    if p.shape != t.shape:
        raise DataError(f"pred has shape {tuple(p.shape)}; expected {tuple(t.shape)} like "
                        "target")
    return ((p - t) ** 2).flatten(1).mean(1)
