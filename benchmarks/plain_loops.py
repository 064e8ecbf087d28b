"""The lean plain-PyTorch baselines the benchmarks time mentor against (shared by them).

In-memory data batched by tensor indexing (no DataLoader), Adam, one validation pass per
epoch -- what a careful hand-written loop costs.
"""

from __future__ import annotations

import sys

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


def kd_loss(zs, zt, y, T: float, alpha: float):
    """``(1-alpha)·CE(zs, y) + alpha·T²·KL(softmax(zt/T) || softmax(zs/T))`` (batch mean),
    written as mentor's ``kd`` objectives compute it (the sanity checks compare weights bit for
    bit)."""
    kl = F.kl_div(F.log_softmax(zs / T, -1), F.log_softmax(zt / T, -1), reduction="batchmean",
                  log_target=True)
    return (1.0 - alpha) * F.cross_entropy(zs, y) + alpha * T * T * kl


def same_weights(plain, mentor, acc_plain: float, acc_mentor: float) -> bool:
    """Print the DataLoader benchmarks' sanity line: whether the plain loop's student and
    mentor's end with bit-identical weights and the same validation accuracy (they do the
    same work); when not, say so on stderr and return False (the script exits 1)."""
    pairs = list(zip(plain.parameters(), mentor.parameters(), strict=True))
    same = all(torch.equal(a, b) for a, b in pairs)
    diff = max((a - b).abs().max().item() for a, b in pairs)
    print(f"sanity: val acc plain {acc_plain:.4f}  mentor {acc_mentor:.4f}; max |weight diff| "
          f"{diff:.2e} ({'bit-identical' if same else 'DIFFERENT'})")
    if not same or acc_plain != acc_mentor:
        print("SANITY FAILED: mentor and the plain DataLoader loop end with different weights "
              "or accuracy; expected bit-identical weights (they do the same work)",
              file=sys.stderr)
        return False
    return True


def index_rows(t, idx):
    """Rows ``idx`` of ``t`` by ``index_select`` (the same values as ``t[idx]``)."""
    return t.index_select(0, idx)


def kd_epochs(student, x, y, xv, yv, zt_all, *, epochs, bs, lr, seed, T, alpha, gather=None):
    """KD, ``(1-alpha)·CE + alpha·T²·KL``, with the teacher logits ``zt_all`` in memory:
    a generator that runs one epoch (and its validation) per ``next`` and yields the
    validation accuracy (benchmarks that interleave two loops epoch by epoch drive it).
    A batch's rows are ``t[idx]``, or ``gather(t, idx)`` when given (:func:`index_rows`)."""
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    n = len(x)
    student.train()
    for _epoch in range(epochs):
        order = torch.randperm(n, generator=gen).to(x.device)
        for i in range(0, n, bs):
            idx = order[i:i + bs]
            if gather is None:
                loss = kd_loss(student(x[idx]), zt_all[idx], y[idx], T, alpha)
            else:
                loss = kd_loss(student(gather(x, idx)), gather(zt_all, idx), gather(y, idx), T,
                               alpha)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        yield val_accuracy(student, xv, yv)


def plain_kd_loop(student, x, y, xv, yv, zt_all, **kw) -> float:
    """:func:`kd_epochs` run to the end; the last epoch's validation accuracy."""
    acc = float("nan")
    for acc in kd_epochs(student, x, y, xv, yv, zt_all, **kw):
        pass
    return acc
