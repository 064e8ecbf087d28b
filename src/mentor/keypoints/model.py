"""A small heatmap network for TB-KPT (METHODS.md §60 ``KeypointHeatmap``): a two-level
U-Net. Full resolution: two 3 × 3 convolutions (``width`` channels); half resolution (a
stride-2 convolution to ``2·width``): 3 × 3 convolutions with dilations 1, 2 and 4 (the
context that tells a hand from a foot: which end of the torso the limb leaves); bilinear
upsampling, concatenation with the full-resolution features, a 3 × 3 convolution and a
1 × 1 convolution to ``K`` heatmap channels at the input's resolution. ReLU between, no
normalisation layers (so an EMA teacher has no running statistics to follow). About 40k
parameters at ``width`` 16."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class TinyPose(nn.Module):
    """Images ``(B, 1, S, S)`` (``S`` even) -> heatmaps ``(B, K, S, S)``."""

    def __init__(self, num_keypoints: int = 5, width: int = 16):
        super().__init__()
        w = int(width)
        self.num_keypoints = int(num_keypoints)
        self.stem = nn.Sequential(nn.Conv2d(1, w, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(w, w, 3, padding=1), nn.ReLU())
        self.down = nn.Sequential(nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.ReLU(),
                                  nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(2 * w, 2 * w, 3, padding=2, dilation=2), nn.ReLU(),
                                  nn.Conv2d(2 * w, 2 * w, 3, padding=4, dilation=4), nn.ReLU())
        self.fuse = nn.Sequential(nn.Conv2d(3 * w, w, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(w, self.num_keypoints, 1)

    def forward(self, x: Tensor) -> Tensor:
        f = self.stem(x)
        g = F.interpolate(self.down(f), size=f.shape[-2:], mode="bilinear",
                          align_corners=False)
        return self.head(self.fuse(torch.cat([f, g], 1)))


def tiny_pose(num_keypoints: int = 5, width: int = 16) -> TinyPose:
    """A :class:`TinyPose` with PyTorch's default initialisation (seed it first)."""
    from ..errors import MentorError
    for name, v in (("num_keypoints", num_keypoints), ("width", width)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise MentorError(f"{name} must be a positive integer, got {v!r}")
    return TinyPose(num_keypoints, width)
