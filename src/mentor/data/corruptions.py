"""Corruptions of digit images for test-time adaptation streams (METHODS.md TB-DIGITS-SHIFT).

Each corruption maps raw 8×8 digit rows (pixel values 0..16, shape ``(B, 64)``) to corrupted
rows in the same range, as tensor ops; random ones take a ``torch.Generator``. A stream
(:func:`shifted_stream`) visits the test split once per corruption, in batches, for several
cycles: the continual test-time adaptation protocol of CoTTA / PSMT re-expressed on digits.
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import MentorError

PIXEL_MAX = 16.0


def _clip(x: Tensor) -> Tensor:
    return x.clamp(0.0, PIXEL_MAX)


def gaussian_noise(sigma: float) -> Callable[[Tensor, torch.Generator], Tensor]:
    def apply(x: Tensor, g: torch.Generator) -> Tensor:
        return _clip(x + sigma * torch.randn(x.shape, generator=g))
    return apply


def salt_pepper(p: float) -> Callable[[Tensor, torch.Generator], Tensor]:
    def apply(x: Tensor, g: torch.Generator) -> Tensor:
        u = torch.rand(x.shape, generator=g)
        x = torch.where(u < p / 2, torch.zeros_like(x), x)
        return torch.where(u > 1 - p / 2, torch.full_like(x, PIXEL_MAX), x)
    return apply


def blur(x: Tensor, g: torch.Generator | None = None) -> Tensor:
    """3×3 mean filter, zero padding."""
    maps = x.reshape(-1, 1, 8, 8)
    return F.avg_pool2d(maps, 3, stride=1, padding=1, count_include_pad=True).reshape(len(x), -1)


def contrast(factor: float) -> Callable[[Tensor, torch.Generator], Tensor]:
    def apply(x: Tensor, g: torch.Generator | None = None) -> Tensor:
        mean = x.mean(1, keepdim=True)
        return _clip(mean + factor * (x - mean))
    return apply


def transpose(x: Tensor, g: torch.Generator | None = None) -> Tensor:
    """The image mirrored along its diagonal (a 90° rotation followed by a flip)."""
    return x.reshape(-1, 8, 8).transpose(1, 2).reshape(len(x), -1)


def invert(x: Tensor, g: torch.Generator | None = None) -> Tensor:
    return PIXEL_MAX - x


CORRUPTIONS: dict[str, Callable[[Tensor, torch.Generator], Tensor]] = {
    "noise-2": gaussian_noise(2.0), "noise-4": gaussian_noise(4.0),
    "salt-pepper": salt_pepper(0.1), "blur": blur, "contrast-0.5": contrast(0.5),
    "transpose": transpose, "invert": invert,
}


def shifted_stream(x: Tensor, y: Tensor, corruptions: Sequence[str], *, batch_size: int = 64,
                   cycles: int = 1, seed: int = 0) -> Iterator[tuple[Tensor, Tensor, str]]:
    """Batches ``(x_corrupted, y, corruption)``: each corruption in turn over the whole of
    ``x`` (raw digit rows), shuffled, for ``cycles`` cycles; a pure function of ``seed``."""
    unknown = [c for c in corruptions if c not in CORRUPTIONS]
    if unknown:
        raise MentorError(f"corruption {unknown[0]!r} is unknown; expected one of "
                          f"{', '.join(CORRUPTIONS)}")
    g = torch.Generator().manual_seed(seed)
    for _ in range(cycles):
        for name in corruptions:
            order = torch.randperm(len(x), generator=g)
            corrupted = CORRUPTIONS[name](x[order], g)
            for i in range(0, len(x), batch_size):
                yield corrupted[i:i + batch_size], y[order][i:i + batch_size], name
