"""A small stereo network for CPU runs (the student of METHODS.md §53 S³; Xu et al.,
"Unsupervised Stereo via Multi-Baseline Geometry-Consistent Self-Training", arXiv
2508.10838, train far larger networks -- this one is a stand-in of the same kind).

:class:`TinyStereo` maps a rectified pair (reference on the left, target to its right, so
a reference pixel ``x`` at disparity ``d`` is at ``x - d`` in the target) to the reference
view's disparity:

1. one feature extractor shared by both views: three 3×3 convolutions (ReLU between),
   features scaled to unit length per pixel;
2. a correlation cost volume: for every candidate ``d = 0..max_disp`` the cosine
   similarity ``f_ref(x) · f_target(x - d)`` (zero where ``x - d`` leaves the frame), times
   a learned positive scale (initially ``e³``);
3. soft-argmin: ``d₀ = Σ_d d · softmax_d(volume)``;
4. a refinement network (StereoNet-style): four 3×3 convolutions with ReLU, dilations 1, 2,
   4, 1, and a 3×3 output convolution (initially zero) read ``[reference, d₀ / max_disp,
   |reference − target(x − d₀)|]`` and add ``max_disp · r`` to ``d₀`` -- the only part
   that sees beyond the matching window, e.g. to fill in occluded pixels (the photometric
   residual marks where the match failed).

No weight depends on ``max_disp``: the same weights read a pair at another baseline with a
wider search (the S³ teacher reads the ``2b`` pair with ``2·max_disp``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import DataError, MentorError


def sample_columns(values: Tensor, x: Tensor, padding: str = "border") -> Tensor:
    """``values`` ``(N, C, H, W)`` read on every row at the fractional columns ``x``
    ``(N, H, W)`` (pixels; linear interpolation; ``padding`` as in ``grid_sample``):
    ``(N, C, H, W)``."""
    h, w = values.shape[-2:]
    gx = 2 * x / max(w - 1, 1) - 1
    gy = torch.linspace(-1, 1, h, dtype=x.dtype, device=x.device)[None, :, None]
    grid = torch.stack([gx, gy.expand_as(gx)], -1)
    return F.grid_sample(values, grid, mode="bilinear", padding_mode=padding,
                         align_corners=True)


def cost_volume(f_ref: Tensor, f_target: Tensor, max_disp: int) -> Tensor:
    """``(N, max_disp + 1, H, W)``: channel sum of ``f_ref(x) · f_target(x - d)``, zero
    where ``x - d < 0``."""
    w = f_ref.shape[-1]
    padded = F.pad(f_target, (max_disp, 0))
    out = [(f_ref * padded[..., max_disp - d:max_disp - d + w]).sum(1)
           for d in range(max_disp + 1)]
    return torch.stack(out, 1)


class TinyStereo(nn.Module):
    """``ref (N, 1, H, W), target (N, 1, H, W), max_disp → disparity (N, H, W)`` (module
    docstring)."""

    def __init__(self, features: int = 12, hidden: int = 16):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, features, 3, padding=1), nn.ReLU(),
            nn.Conv2d(features, features, 3, padding=1), nn.ReLU(),
            nn.Conv2d(features, features, 3, padding=1))
        self.log_scale = nn.Parameter(torch.tensor(3.0))
        layers: list[nn.Module] = []
        c = 3
        for dil in (1, 2, 4, 1):
            layers += [nn.Conv2d(c, hidden, 3, padding=dil, dilation=dil), nn.ReLU()]
            c = hidden
        self.refine = nn.Sequential(*layers)
        self.head = nn.Conv2d(hidden, 1, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, ref: Tensor, target: Tensor, max_disp: int) -> Tensor:
        if ref.shape != target.shape or ref.dim() != 4 or ref.shape[1] != 1:
            raise DataError(f"ref has shape {tuple(ref.shape)} and target "
                            f"{tuple(target.shape)}; expected two (N, 1, H, W) views of "
                            "one shape")
        if isinstance(max_disp, bool) or not isinstance(max_disp, int) or max_disp < 1:
            raise MentorError(f"max_disp must be a positive integer, got {max_disp!r}")
        f = self.features(torch.cat([ref, target], 0))
        f = f * torch.rsqrt((f * f).sum(1, keepdim=True) + 1e-12)  # unit length per pixel
        volume = cost_volume(f[:len(ref)], f[len(ref):], max_disp) * self.log_scale.exp()
        prob = torch.softmax(volume, 1)
        levels = torch.arange(max_disp + 1, dtype=prob.dtype, device=prob.device)
        d0 = (prob * levels[:, None, None]).sum(1)
        xs = torch.arange(ref.shape[-1], dtype=d0.dtype, device=d0.device)
        residual = (ref - sample_columns(target, xs - d0)).abs()
        x = torch.cat([ref, (d0 / max_disp)[:, None], residual], 1)
        return d0 + max_disp * self.head(self.refine(x))[:, 0]


def tiny_stereo(features: int = 12, hidden: int = 16) -> TinyStereo:
    """A fresh :class:`TinyStereo` (``features`` channels in the extractor, ``hidden`` in
    the refinement)."""
    for name, v in (("features", features), ("hidden", hidden)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise MentorError(f"{name} must be a positive integer, got {v!r}")
    return TinyStereo(features, hidden)
