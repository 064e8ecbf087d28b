"""Evaluation with metrics gathered over all processes' shards."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def shard_bounds(n: int, world: int, rank: int) -> tuple[int, int]:
    """Contiguous shard ``[lo, hi)`` of ``n`` rows for ``rank`` out of ``world``."""
    per = -(-n // world)
    return min(rank * per, n), min((rank + 1) * per, n)


@torch.no_grad()
def predict_logits(model: nn.Module, x: Tensor, chunk: int = 4096,
                   y: Tensor | None = None) -> Tensor:
    """Eval-mode logits in chunks; ``y`` given: ``model(x, y)`` (labels as model input)."""
    was_training = model.training
    model.eval()
    parts = [model(x[i:i + chunk]) if y is None else model(x[i:i + chunk], y[i:i + chunk])
             for i in range(0, len(x), chunk)]
    out = (parts[0] if len(parts) == 1 else torch.cat(parts)) if parts else None
    model.train(was_training)
    return out


@torch.no_grad()
def _rows_logits(model: nn.Module, rows, lo: int, hi: int, y: Tensor | None,
                 chunk: int = 4096) -> Tensor:
    """Eval-mode logits of rows ``[lo, hi)`` of a row source (:mod:`mentor.data.rows`)."""
    was_training = model.training
    model.eval()
    ids = list(torch.arange(lo, hi).split(chunk))
    out = torch.cat([model(x) if y is None else model(x, y[i.to(y.device)])
                     for i, x in zip(ids, rows.batches(ids))])
    model.train(was_training)
    return out


@torch.no_grad()
def evaluate(model: nn.Module, x, y: Tensor, accelerator=None,
             teacher_logits: Tensor | None = None, task=None,
             labels_as_input: bool = False) -> dict[str, float]:
    """The task's metric (classification: ``accuracy``) and agreement with
    ``teacher_logits`` over the whole split.

    ``labels_as_input``: the model reads the labels as privileged input (``model(x, y)``,
    a label-assisted teacher); its accuracy is then the label-assisted accuracy.

    Under several processes each evaluates its contiguous shard and the counts are summed
    across processes, so the result covers every row exactly once (``n`` says how many).
    ``x``: the inputs, a tensor or a row source (:mod:`mentor.data.rows`, e.g. a dataset read
    through a DataLoader).
    """
    world = accelerator.num_processes if accelerator is not None else 1
    rank = accelerator.process_index if accelerator is not None else 0
    lo, hi = shard_bounds(len(y), world, rank)
    if not isinstance(x, Tensor) and x.in_memory is not None:
        x = x.in_memory  # a tensor row source: slice it
    if task is None:
        from ..tasks import CLASSIFICATION as task
    right = agree = 0
    if hi > lo:
        given = y if labels_as_input else None
        logits = (predict_logits(model, x[lo:hi], y=None if given is None else y[lo:hi])
                  if isinstance(x, Tensor) else _rows_logits(model, x, lo, hi, given))
        right = task.score(logits, y[lo:hi]).sum()
        if teacher_logits is not None:
            agree = task.correct(logits, teacher_logits[lo:hi]).sum()
    if world > 1:  # the counts of every shard, summed
        counts = torch.tensor([float(right), float(hi - lo), float(agree)],
                              dtype=torch.float64, device=y.device)
        right, n, agree = accelerator.reduce(counts, reduction="sum").tolist()
    else:
        right, n, agree = float(right), float(hi - lo), float(agree)
    out = {task.metric: right / max(n, 1.0), "n": int(n)}
    if teacher_logits is not None:
        out["teacher_agreement"] = agree / max(n, 1.0)
    return out
