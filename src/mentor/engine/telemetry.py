"""Pseudo-label quality over training, and teacher-collapse detection.

When the unlabeled rows carry hidden true labels (every embedded data set does), each step's
targets on those rows are scored with their effective weight ``w = mask · weight``:

- ``precision``: ``Σ w·[label correct] / Σ w`` -- how often admitted pseudo-labels are right;
- ``recall``: ``Σ w·[correct] / #[teacher's prediction correct]`` -- how much of the teacher's
  correct knowledge the admission lets through;
- ``coverage``: ``Σ w / #unlabeled rows`` -- how much of the pool is used (over every
  unlabeled row: it needs no true label);
- ``thresholds``: the refiners' current per-class thresholds, when they have any.

Collapse: a step where no unlabeled row is admitted, or where one pseudo-label (a class)
takes more than ``share`` of at least ``C`` admitted rows (``C``: the task's output size), is
a bad step; ``steps`` bad steps in a row stop
the run with a :class:`mentor.errors.TrainingFault` naming the steps and a hint.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor

from ..contracts import Batch, RefinerHooks, TaskAdapter, Targets
from ..errors import TrainingFault
from .._util.dist import cat_all


class PseudoLabelMonitor:
    """Scores pseudo-labels against the hidden truth through the task adapter: its
    ``same`` (pseudo-label vs truth), ``correct`` (the teacher's prediction) and
    ``label_name`` (messages)."""

    def __init__(self, task: TaskAdapter, truth: Tensor, num_outputs: int, refiners=(),
                 collapse_steps: int = 0, share: float = 0.9):
        self.task = task
        self.truth = truth  # the training rows' true labels, -1 where unknown
        self.num_outputs = num_outputs
        self.refiners = [r if isinstance(r, RefinerHooks) else RefinerHooks(r) for r in refiners]
        self.collapse_steps, self.share = int(collapse_steps), float(share)
        self.bad = 0
        self.bad_since = 0
        self._reset()

    def _reset(self) -> None:
        # Σw, Σw·ok, Σok(teacher), n over rows with a known label; Σw, n over all unlabeled
        self.sums = torch.zeros(6, dtype=torch.float64)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The epoch's running sums and the collapse counter (a mid-epoch checkpoint)."""
        return {"sums": self.sums.clone(),
                "bad": torch.tensor([self.bad, self.bad_since], dtype=torch.long)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.sums = state["sums"].clone()
        self.bad, self.bad_since = (int(v) for v in state["bad"])

    def observe(self, targets: Targets, batch: Batch, epoch: int, step: int) -> None:
        """Score a step's refined ``targets`` -- one per element of ``batch``
        (:meth:`~mentor.contracts.TaskAdapter.elements`: a row, or a tagging token) --
        against the hidden truth of those elements."""
        if batch.labeled is None:  # the same on every process: all rows labeled
            return
        truth = self.task.take(self.truth, batch.index)
        # the elements of the truth are the batch's (padding is the same in both)
        _, _, batch = self.task.elements(truth, None, replace(batch, y=truth))
        truth, task = batch.y, self.task.element_task
        unl = ~batch.labeled
        n = len(unl)
        w = torch.ones(n, device=unl.device)
        if targets.mask is not None:
            w = w * targets.mask.to(w.dtype)
        if targets.weight is not None:
            w = w * targets.weight.detach().to(w.dtype)
        self.sums[4] += float(w[unl].double().sum())
        self.sums[5] += float(unl.sum())
        known = unl & task.known(truth)
        if bool(known.any()):
            wk = w[known].double()
            ok = task.same(targets.labels[known], truth[known]).double()
            teacher_ok = task.correct(targets.logits[known], truth[known]).double()
            self.sums[:4] += torch.stack([wk.sum(), (wk * ok).sum(), teacher_ok.sum(),
                                          torch.tensor(float(known.sum()),
                                                       dtype=torch.float64)]).cpu()
        if self.collapse_steps:  # decided on every process's rows, so all stop together
            w_all, labels_all = cat_all(w[unl]), cat_all(targets.labels[unl])
            if len(w_all):
                self._check_collapse(w_all, labels_all, epoch, step)

    def _check_collapse(self, w: Tensor, labels: Tensor, epoch: int, step: int) -> None:
        admitted = w > 0
        k = int(admitted.sum())
        reason = None
        if k == 0:
            reason = "no pseudo-label was admitted"
        elif k >= self.num_outputs:
            values, counts = torch.unique(labels[admitted], dim=0, return_counts=True)
            top = int(counts.argmax())
            frac = float(counts[top]) / k
            if frac > self.share:
                reason = (f"{self.task.element_task.label_name(values[top])} took {100 * frac:.0f} % of "
                          "the admitted pseudo-labels "
                          f"(limit {100 * self.share:.0f} %)")
        if reason is None:
            self.bad = 0
            return
        if self.bad == 0:
            self.bad_since = step + 1
        self.bad += 1
        if self.bad >= self.collapse_steps:
            raise TrainingFault(
                f"teacher collapse: {reason} at every step from {self.bad_since} to {step + 1} "
                f"(epoch {epoch + 1}, {self.bad} steps in a row); lower the confidence "
                "threshold, train the teacher longer on the labels, or raise "
                "train.collapse_steps (0 turns the check off)")

    def epoch_summary(self) -> dict[str, object]:
        sums = cat_all(self.sums[None]).sum(0)  # every process's rows
        sw, swok, tok, _, sw_all, n_all = (float(v) for v in sums)
        out: dict[str, object] = {
            "pl_precision": swok / sw if sw > 0 else float("nan"),
            "pl_recall": swok / tok if tok > 0 else float("nan"),
            "pl_coverage": sw_all / n_all if n_all > 0 else float("nan"),
        }
        thr = None
        for r in self.refiners:
            t = r.thresholds  # RefinerHooks: None unless the refiner keeps thresholds
            if t is not None:
                thr = [round(float(v), 6) for v in t]
        out["pl_thresholds"] = thr
        self._reset()
        return out
