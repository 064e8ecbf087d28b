"""The lean plain-PyTorch baselines the benchmarks time mentor against (shared by them).

In-memory data batched by tensor indexing (no DataLoader), Adam, one validation pass per
epoch -- what a careful hand-written loop costs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def set_threads(n: int) -> None:
    """Intra- and inter-op torch threads (the latter can only be set once per process)."""
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(n)
    except RuntimeError:
        pass


def sync(device) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


@torch.no_grad()
def val_accuracy(model, xv, yv) -> float:
    """The per-epoch validation pass given to the plain loops (mentor's fit does its own)."""
    model.eval()
    acc = (model(xv).argmax(-1) == yv).float().mean().item()
    model.train()
    return acc


def plain_kd_loop(student, x, y, xv, yv, zt_all, *, epochs, bs, lr, seed, T, alpha) -> float:
    """KD, ``(1-alpha)·CE + alpha·T²·KL``, with the teacher logits ``zt_all`` in memory."""
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    n = len(x)
    w_ce, w_kd = 1.0 - alpha, alpha * T * T
    acc = float("nan")
    student.train()
    for _epoch in range(epochs):
        order = torch.randperm(n, generator=gen).to(x.device)
        for i in range(0, n, bs):
            idx = order[i:i + bs]
            zs = student(x[idx])
            kl = F.kl_div(F.log_softmax(zs / T, -1), F.log_softmax(zt_all[idx] / T, -1),
                          reduction="batchmean", log_target=True)
            loss = w_ce * F.cross_entropy(zs, y[idx]) + w_kd * kl
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        acc = val_accuracy(student, xv, yv)
    return acc
