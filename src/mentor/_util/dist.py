"""Rows of every process: what stateful refiners and the pseudo-label monitor need so that
their state (class-wise counts, running means, collapse decisions) is the same on every
process of a multi-process run. Without a process group these are identities."""

from __future__ import annotations

import torch
from torch import Tensor


def world() -> int:
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def cat_all(t: Tensor) -> Tensor:
    """``t`` of every process concatenated in rank order (rows may differ in number).
    Every process must call it, in the same order: it is a collective."""
    if world() == 1:
        return t
    import torch.distributed as dist
    dtype = t.dtype
    x = t.to(torch.uint8) if dtype == torch.bool else t
    n = torch.tensor([len(x)], dtype=torch.long, device=x.device)
    sizes = [torch.zeros_like(n) for _ in range(world())]
    dist.all_gather(sizes, n)
    m = int(max(int(s) for s in sizes))
    pad = x.new_zeros((m, *x.shape[1:]))
    pad[:len(x)] = x
    outs = [torch.zeros_like(pad) for _ in range(world())]
    dist.all_gather(outs, pad.contiguous())
    out = torch.cat([o[:int(s)] for o, s in zip(outs, sizes)])
    return out.to(dtype) if dtype == torch.bool else out
