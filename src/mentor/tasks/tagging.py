"""Sequence tagging: outputs are tag logits per token ``(B, L, T)``; a row's labels are its
tags ``(B, L)``.

Labels: a tag id ``0..T-1`` per real token, :data:`PAD` (``-2``) where a row has no token
(its padding) and ``-1`` where a token's tag is hidden from the student (an unlabeled row).
Tags are BIO over ``(T - 1) / 2`` entity types: ``0`` is ``O``, ``2k + 1`` is ``B-k`` and
``2k + 2`` is ``I-k``. The metric is micro span F1 as CoNLL's ``conlleval`` computes it
(:func:`spans`). The objectives read one element per real token (:meth:`Tagging.elements`),
so every classification loss (CE, KD, a refiner's per-token confidence mask) applies to
tags unchanged.

The task of QUEACO (Zhang et al., "QUEACO: Borrowing Treasures from Weakly-labeled Behavior
Data for Query Attribute Value Extraction", CIKM 2021; METHODS.md §12) and of slot filling.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import torch
from torch import Tensor, nn

from ..contracts import Batch, Targets
from ..data.rows import first_tensor
from ..errors import MentorError
from ..models.call import call_model
from ..registry import TASKS
from .row_labels import UNSEEN, RowLabels

PAD = -2  # the label of a position that holds no token (a row's padding)


def spans(tags: Sequence[int]) -> set[tuple[int, int, int]]:
    """The ``(start, end, type)`` spans (``end`` exclusive) of one sequence's BIO tag ids, as
    CoNLL's ``conlleval`` reads them: ``B-k`` opens a span of type ``k``; ``I-k`` continues
    the open span when it has type ``k`` and otherwise -- after ``O``, at the start, or after
    a span of another type -- opens a new one (an ``I-`` without a ``B-`` reads as a ``B-``);
    ``O`` and the end of the tokens close the open span."""
    out: set[tuple[int, int, int]] = set()
    start, kind = -1, -1
    for j, t in enumerate(tags):
        t = int(t)
        if t == 0:
            if kind >= 0:
                out.add((start, j, kind))
            start, kind = -1, -1
            continue
        k, is_b = (t - 1) // 2, (t - 1) % 2 == 0
        if is_b or k != kind:
            if kind >= 0:
                out.add((start, j, kind))
            start, kind = j, k
    if kind >= 0:
        out.add((start, len(tags), kind))
    return out


def f1_of(correct: float, predicted: float, gold: float) -> float:
    """Micro F1 from span counts: 1 with neither predicted nor gold spans, 0 when none is
    correct, else the harmonic mean of precision and recall."""
    if predicted == 0 and gold == 0:
        return 1.0
    if correct == 0:
        return 0.0
    precision, recall = correct / predicted, correct / gold
    return 2 * precision * recall / (precision + recall)


def _per_element(t: Tensor | None, keep: Tensor) -> Tensor | None:
    """A per-row ``(B,)`` or per-token ``(B, L)`` tensor as one entry per kept token."""
    if t is None:
        return None
    if t.ndim == 1:
        t = t[:, None].expand(keep.shape)
    return t[keep]


class Tagging(RowLabels):
    """The sequence-tagging task adapter (the contract :class:`mentor.contracts.TaskAdapter`;
    the module docstring gives the labels).

    ``score`` gives each row's own span F1; the metric is the micro F1 of all rows' spans
    together (:meth:`metric_state` sums ``[correct, predicted, gold]`` spans), not the mean
    of ``score``."""

    name = "tagging"
    metric = "span_f1"
    higher_is_better = True
    # mixers paste whole rows (refiners judge the elements, views keep positions)
    per_row_parts = False
    position_views = True  # views rewrite tokens in place (token_resample), never move them

    @property
    def element_task(self):
        """A token is a classification element (its tag)."""
        from .classification import CLASSIFICATION
        return CLASSIFICATION

    def num_outputs(self, model: nn.Module, example: Tensor) -> int:
        """The number of tags ``model`` scores per token, read from its outputs on two
        example rows ``(B, L)``."""
        example = example[:2]
        with torch.no_grad():
            was = model.training
            model.eval()
            out = self.forward(model, example)
            model.train(was)
        if out.ndim != 3 or tuple(out.shape[:2]) != tuple(example.shape[:2]):
            raise MentorError(f"the tagger outputs shape {tuple(out.shape)} for token ids "
                              f"{tuple(example.shape)}; expected (rows, length, tags)")
        return int(out.shape[-1])

    def check(self, model: nn.Module, teacher, example: Tensor, num_outputs: int) -> None:
        """Student (and teacher) score ``num_outputs`` tags per token."""
        got = self.num_outputs(model, example)
        if got != num_outputs:
            raise MentorError(f"the student scores {got} tags per token but the data has "
                              f"{num_outputs} tags; expected the same tag set")
        if teacher is not None and teacher.num_classes != num_outputs:
            raise MentorError(f"the teacher scores {teacher.num_classes} tags but the student "
                              f"and data {num_outputs}; expected the same tag set")

    def forward(self, model, x: Tensor, y: Tensor | None = None) -> Tensor:
        return call_model(model, x, y)

    def predict(self, logits: Tensor) -> Tensor:
        """The arg-max tag of every token ``(B, L)``."""
        return logits.argmax(-1)

    def hide(self, y: Tensor, seen: Tensor) -> Tensor:
        """The tags of rows not in ``seen`` hidden (``-1``); padding stays :data:`PAD`."""
        return torch.where(seen[:, None] | (y == PAD), y, torch.full_like(y, UNSEEN))

    def known(self, y: Tensor) -> Tensor:
        return (y >= 0).any(1)

    def pseudo_labels(self, outputs: Tensor, batch: Batch) -> Tensor:
        """Seen tags kept, hidden tags (``-1``) predicted from ``outputs``, padding kept."""
        return torch.where(batch.y == UNSEEN, self.predict(outputs), batch.y)

    def same(self, labels: Tensor, truth: Tensor) -> Tensor:
        """Per row: every tagged token of ``truth`` (``>= 0``) has the same tag in ``labels``."""
        return ((labels == truth) | (truth < 0)).all(1)

    def correct(self, logits: Tensor, y: Tensor) -> Tensor:
        """Per row: every tagged token is predicted right (``y`` other logits: every token
        of the two models agrees)."""
        if y.ndim == logits.ndim:
            return (self.predict(logits) == y.argmax(-1)).all(-1)
        return self.same(self.predict(logits), y)

    def _counts(self, logits: Tensor, y: Tensor) -> Tensor:
        """``(B, 3)`` per-row ``[correct, predicted, gold]`` spans over the tagged tokens
        (real tokens first, then padding)."""
        pred = self.predict(logits).tolist()
        lengths = (y >= 0).sum(1).tolist()
        rows = []
        for p, g, n in zip(pred, y.tolist(), lengths):
            ps, gs = spans(p[:n]), spans(g[:n])
            rows.append((len(ps & gs), len(ps), len(gs)))
        return torch.tensor(rows, dtype=torch.float64).reshape(len(lengths), 3)

    def score(self, logits: Tensor, y: Tensor) -> Tensor:
        """Each row's own span F1."""
        return torch.tensor([f1_of(*c) for c in self._counts(logits, y).tolist()],
                            dtype=torch.float64)

    def metric_state(self, logits: Tensor | None, y: Tensor | None) -> Tensor:
        """``[correct, predicted, gold]`` span counts of a shard in float64."""
        if logits is None:
            return torch.zeros(3, dtype=torch.float64)
        return self._counts(logits, y).sum(0)

    def metric_value(self, state: Tensor) -> float:
        return f1_of(*state.tolist())

    def example(self, num_outputs: int) -> tuple[Tensor, Tensor]:
        """Zero outputs and tags of two one-token rows: ``(2, 1, T)`` logits, tag 0."""
        return torch.zeros(2, 1, num_outputs), torch.zeros(2, 1, dtype=torch.long)

    def label_name(self, label: Tensor) -> str:
        return "tags " + " ".join(str(int(t)) for t in label.flatten() if int(t) != PAD)

    def elements(self, outputs: Tensor | dict[str, Tensor], targets: Targets | None,
                 batch: Batch) -> tuple[Tensor | dict[str, Tensor], Targets | None, Batch]:
        """One element per real token (labels other than :data:`PAD`): outputs, teacher
        targets and labels ``(N, T)`` / ``(N,)``; a refiner's per-row or per-token mask and
        weight and the batch's per-row flags repeated over each row's tokens."""
        keep = batch.y != PAD
        if type(outputs) is dict:
            outputs = {k: v[keep] for k, v in outputs.items()}
        else:
            outputs = outputs[keep]
        if targets is not None:
            extra = (None if targets.extra is None
                     else {k: v[keep] for k, v in targets.extra.items()})
            targets = targets.with_(logits=targets.logits[keep], labels=targets.labels[keep],
                                    mask=_per_element(targets.mask, keep),
                                    weight=_per_element(targets.weight, keep), extra=extra)
        batch = replace(batch, y=batch.y[keep], index=_per_element(batch.index, keep),
                        labeled=_per_element(batch.labeled, keep),
                        weak_y=None if batch.weak_y is None else batch.weak_y[keep])
        return outputs, targets, batch


def check_tag_ids(y: Tensor, x: Tensor, num_tags: int, what: str = "tags") -> None:
    """Refuse tags that do not fit their token ids ``x`` (``0`` pads): a tag id beyond the tag
    set, a tag on a padding position, a real token without a tag (hidden: ``-1``)."""
    if tuple(y.shape) != tuple(x.shape):
        raise MentorError(f"{what} have shape {tuple(y.shape)} but the token ids "
                          f"{tuple(x.shape)}; expected one tag per token")
    real = first_tensor(x) != 0
    bad = real & ((y >= num_tags) | (y < UNSEEN))
    if bool(bad.any()):
        r, c = (int(v) for v in bad.nonzero()[0])
        raise MentorError(f"{what}: row {r}, token {c} has tag id {int(y[r, c])}; expected "
                          f"0..{num_tags - 1} ({num_tags} tags) or -1 (hidden)")
    pad = ~real & (y != PAD)
    if bool(pad.any()):
        r, c = (int(v) for v in pad.nonzero()[0])
        raise MentorError(f"{what}: row {r}, padding position {c} has tag id {int(y[r, c])}; "
                          f"expected {PAD} (no token)")


TAGGING = TASKS.register("tagging", description="tag logits per token (B, L, T); labels -2 "
                         "on padding, -1 hidden; micro span F1 (BIO)")(Tagging())
