"""Which training rows each step sees.

The default is one shuffled pass over all rows per epoch (the loop's ``order``). With
``train.unlabeled_ratio = mu > 0`` and unlabeled rows present, :class:`TwoStreams` gives every
step ``batch_size`` labeled rows and ``mu * batch_size`` unlabeled rows (FixMatch's ratio),
each from its own endless stream of per-epoch permutations; an epoch is one pass over the
unlabeled pool. Every batch is a pure function of ``(seed, step)``, so a resumed run sees the
batches an uninterrupted one would.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _perm(n: int, seed: int, tag: int, epoch: int) -> Tensor:
    g = torch.Generator().manual_seed((seed * 1_000_003 + tag * 10_007 + epoch * 31 + 5)
                                      % (2**63 - 1))
    return torch.randperm(n, generator=g)


def stream_slice(n: int, k: int, seed: int, tag: int, step: int) -> Tensor:
    """Positions ``[step·k, step·k + k)`` of the endless concatenation of permutations of
    ``range(n)`` (a new permutation per pass)."""
    start = step * k
    first, last = start // n, (start + k - 1) // n
    cat = torch.cat([_perm(n, seed, tag, e) for e in range(first, last + 1)])
    off = start - first * n
    return cat[off:off + k]


class TwoStreams:
    """Labeled and unlabeled rows in a fixed ratio per step."""

    def __init__(self, labeled: Tensor, batch_size: int, ratio: int, seed: int, world: int,
                 draw_unlabeled: bool = True):
        labeled = labeled.cpu()
        self.lab = labeled.nonzero().squeeze(-1)
        self.unl = (~labeled).nonzero().squeeze(-1)
        self.b_lab, self.b_unl = batch_size * world, batch_size * ratio * world
        self.seed, self.world = seed, world
        self.steps_per_epoch = max(1, math.ceil(len(self.unl) / self.b_unl))
        if not draw_unlabeled:  # no loss reads unlabeled rows: same steps, labeled rows only
            self.b_unl = 0

    def batch(self, step: int) -> Tensor:
        """Rows of the global batch of ``step`` (0-based): labeled first, then unlabeled."""
        lab = self.lab[stream_slice(len(self.lab), self.b_lab, self.seed, 1, step)]
        if not self.b_unl:
            return lab
        unl = self.unl[stream_slice(len(self.unl), self.b_unl, self.seed, 2, step)]
        return torch.cat([lab, unl])

    def local(self, rank: int) -> Tensor:
        """Positions of one process's rows within the global batch (its share of both)."""
        lab = torch.arange(self.b_lab).tensor_split(self.world)[rank]
        unl = (self.b_lab + torch.arange(self.b_unl)).tensor_split(self.world)[rank]
        return torch.cat([lab, unl])
