"""Evaluation with metrics gathered over all processes' shards."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..contracts import TaskAdapter
from ..data.rows import as_rows, read_chunks
from ..tasks import CLASSIFICATION


def shard_bounds(n: int, world: int, rank: int) -> tuple[int, int]:
    """Contiguous shard ``[lo, hi)`` of ``n`` rows for ``rank`` out of ``world``."""
    per = -(-n // world)
    return min(rank * per, n), min((rank + 1) * per, n)


@torch.no_grad()
def predict_logits(model: nn.Module, x, lo: int = 0, hi: int | None = None,
                   y: Tensor | None = None, chunk: int = 4096,
                   task: TaskAdapter = CLASSIFICATION) -> Tensor | None:
    """Eval-mode logits of rows ``[lo, hi)`` of ``x`` (a tensor or a row source,
    :mod:`mentor.data.rows`), read in chunks and called as the task says (its ``forward``;
    classification unless given); ``y`` given: the model reads the labels as input. ``None`` for
    no rows."""
    rows = as_rows(x)
    was_training = model.training
    model.eval()
    parts = [task.forward(model, xb, None if y is None else task.take(y, i.to(y.device)))
             for i, xb in read_chunks(rows, lo, len(rows) if hi is None else hi, chunk)]
    model.train(was_training)
    return (parts[0] if len(parts) == 1 else torch.cat(parts)) if parts else None


@torch.no_grad()
def evaluate(model: nn.Module, x, y: Tensor, accelerator=None,
             teacher_logits: Tensor | None = None,
             task: TaskAdapter = CLASSIFICATION,
             labels_as_input: bool = False) -> dict[str, float]:
    """The task's metric (classification: ``accuracy``) and agreement with
    ``teacher_logits`` over the whole split. The metric is the task's
    (:meth:`~mentor.contracts.TaskAdapter.metric_state` summed over processes, then
    :meth:`~mentor.contracts.TaskAdapter.metric_value`).

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
    logits, agree = None, 0
    if hi > lo:
        logits = predict_logits(model, x, lo, hi, y=y if labels_as_input else None, task=task)
        if teacher_logits is not None:
            agree = task.correct(logits, teacher_logits[lo:hi]).sum()
    state = task.metric_state(logits, task.take(y, slice(lo, hi)) if hi > lo else None)
    n, agree = float(hi - lo), float(agree)
    if world > 1:  # the task's summable state, the rows and the agreement count of every shard
        sums = torch.cat([state.to(torch.float64),
                          torch.tensor([n, agree], dtype=torch.float64)])
        sums = accelerator.reduce(sums.to(y.device), reduction="sum").cpu()
        state, n, agree = sums[:-2], float(sums[-2]), float(sums[-1])
    out = {task.metric: task.metric_value(state), "n": int(n)}
    if teacher_logits is not None:
        out["teacher_agreement"] = agree / max(n, 1.0)
    return out
