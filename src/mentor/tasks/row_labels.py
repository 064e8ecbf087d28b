"""What tasks whose labels are a tensor with one row per sample share: the batch's labels
taken by sample id, hidden labels (``-1``), pseudo-labels from the teacher's outputs, and
per-row agreement of two label tensors. Classification (a class per row) and tokens (a next
token per position, ``-1`` off the completion) both build on it; a task whose labels are not
one tensor (boxes per image) implements these hooks itself."""

from __future__ import annotations

import torch
from torch import Tensor

from ..contracts import Batch
from ..models.call import call_model

UNSEEN = -1  # the label value of a row (or position) no loss or metric may read


def _per_row(mask: Tensor, like: Tensor) -> Tensor:
    """A per-row boolean ``mask`` shaped to broadcast over ``like``'s other dimensions."""
    return mask.view(-1, *([1] * (like.ndim - 1))) if like.ndim > 1 else mask


class RowLabels:
    """Labels as one tensor, row ``i`` the labels of sample ``i``; ``-1`` marks unseen. The
    task defines ``predict`` (its prediction from outputs)."""

    per_row_parts = True  # a view or mixer acts on a row as a whole
    position_views = False  # views chosen by the inputs' layout (rows, named token ids)

    @property
    def element_task(self):
        """A row is an element: the adapter itself."""
        return self

    def forward(self, model, x, y: Tensor | None = None) -> Tensor:
        """The model's outputs on a batch's inputs ``x``: ``model(x)``; ``model(x, y)`` for a
        model that reads the labels as input (a label-assisted teacher); ``model(**x)`` for
        named tensors (a dict), a Hugging Face output's ``.logits`` unwrapped
        (:func:`mentor.models.call.call_model`)."""
        return call_model(model, x, y)

    def take(self, y: Tensor, ids: Tensor | slice) -> Tensor:
        """The labels of rows ``ids`` (sample ids, or a slice of a split's rows)."""
        return y[ids] if type(ids) is slice else y.index_select(0, ids)

    def hide(self, y: Tensor, seen: Tensor) -> Tensor:
        """``y`` with the rows not in ``seen`` (a boolean per row) marked unseen."""
        return torch.where(_per_row(seen, y), y, torch.full_like(y, UNSEEN))

    def known(self, y: Tensor) -> Tensor:
        """Per row: it has a label (a seen position, for labels per position)."""
        seen = y >= 0
        return seen if seen.ndim == 1 else seen.flatten(1).any(1)

    def pseudo_labels(self, outputs: Tensor, batch: Batch) -> Tensor:
        """The batch's labels where the student may see them, else the task's prediction
        from ``outputs`` (the teacher's): the rows' pseudo-labels."""
        return torch.where(_per_row(batch.labeled, batch.y), batch.y, self.predict(outputs))

    def metric_state(self, logits: Tensor | None, y: Tensor | None) -> Tensor:
        """A shard's validation metric as sums over its rows, ``[Σ score, rows]`` in float64
        (``logits`` ``None``: an empty shard); the sums of every process give the metric."""
        if logits is None:
            return torch.zeros(2, dtype=torch.float64)
        return torch.tensor([float(self.score(logits, y).sum()), float(len(logits))],
                            dtype=torch.float64)

    def metric_value(self, state: Tensor) -> float:
        """The metric from every shard's summed state: the mean per-row score."""
        total, rows = state.tolist()
        return total / max(rows, 1.0)

    def elements(self, outputs, targets, batch):
        """The objectives read rows as they are: a row is an element."""
        return outputs, targets, batch

    def same(self, labels: Tensor, truth: Tensor) -> Tensor:
        """Per row: ``labels`` equal ``truth`` wherever ``truth`` is seen (``>= 0``)."""
        eq = (labels == truth) | (truth < 0)
        return eq if eq.ndim == 1 else eq.flatten(1).all(1)
