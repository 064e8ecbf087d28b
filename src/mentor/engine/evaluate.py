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
    out = torch.cat([model(x[i:i + chunk]) if y is None else
                     model(x[i:i + chunk], y[i:i + chunk])
                     for i in range(0, len(x), chunk)]) if len(x) else None
    model.train(was_training)
    return out


@torch.no_grad()
def evaluate(model: nn.Module, x: Tensor, y: Tensor, accelerator=None,
             teacher_logits: Tensor | None = None, task=None,
             labels_as_input: bool = False) -> dict[str, float]:
    """Accuracy (and agreement with ``teacher_logits``) over the whole split.

    ``labels_as_input``: the model reads the labels as privileged input (``model(x, y)``,
    a label-assisted teacher); its accuracy is then the label-assisted accuracy.

    Under several processes each evaluates its contiguous shard and the counts are summed
    across processes, so the result covers every row exactly once (``n`` says how many).
    """
    world = accelerator.num_processes if accelerator is not None else 1
    rank = accelerator.process_index if accelerator is not None else 0
    lo, hi = shard_bounds(len(y), world, rank)
    device = x.device
    counts = torch.zeros(3, dtype=torch.float64, device=device)
    if task is None:
        from ..tasks import CLASSIFICATION as task
    if hi > lo:
        logits = predict_logits(model, x[lo:hi], y=y[lo:hi] if labels_as_input else None)
        counts[0] = task.correct(logits, y[lo:hi]).sum()
        counts[1] = hi - lo
        if teacher_logits is not None:
            counts[2] = task.correct(logits, teacher_logits[lo:hi]).sum()
    if world > 1:
        counts = accelerator.reduce(counts, reduction="sum")
    n = float(counts[1])
    out = {"accuracy": float(counts[0]) / max(n, 1.0), "n": int(n)}
    if teacher_logits is not None:
        out["teacher_agreement"] = float(counts[2]) / max(n, 1.0)
    return out
