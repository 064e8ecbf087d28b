"""The OOD experiment of VLM -> student distillation (METHODS.md §56): a student trained on
some classes only, scored zero-shot on the others through the teacher's text table.

Li et al. 2023, "Distilling Large Vision-Language Model with Out-of-Distribution
Generalizability" (ICCV); code xuanlinli17/large_vlm_distillation_ood
``main_experiments.py``. Arms (the objectives are :mod:`mentor.vl.objectives`):

- ``ce``: cross-entropy with the student's own head over the training classes; it has no
  output for unseen classes, so they are scored by the nearest text to its (unaligned) feature;
- ``cls``: ``L-cls`` against the training classes' text embeddings;
- ``cls+feat``: ``+ L-mse + L-cst`` to the teacher's image features;
- ``cls+feat+vlalign``: ``+ L-vlalign`` (top-``k`` of the training label texts, teacher-correct
  rows only).

Each loss has weight 1; Adam; the epoch is chosen by validation accuracy on the training
classes only (the unseen classes' rows are never used to choose) [reconstruction: weights,
optimizer and the MLP student are ours; the paper trains ResNet/ViT students].
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor, nn

from .._util.args import positive_int
from ..errors import MentorError
from .objectives import l_cls, l_cst, l_mse, l_vlalign

ARMS = ("ce", "cls", "cls+feat", "cls+feat+vlalign")


class FeatureStudent(nn.Module):
    """An MLP to a ``dim``-wide feature (the teacher's embedding width) and, for the ``ce``
    arm, a linear head over the training classes."""

    def __init__(self, in_features: int, dim: int, num_classes: int, hidden: int = 64):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(),
                                  nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


def nearest_text(u: Tensor, text: Tensor) -> Tensor:
    """Index of the text whose embedding is most similar (cosine) to each row of ``u``."""
    return (nn.functional.normalize(u, dim=-1) @ nn.functional.normalize(text, dim=-1).T
            ).argmax(-1)


def local_labels(y: Tensor, classes: Sequence[int]) -> Tensor:
    """``y`` as positions in ``classes`` (every label must be one of them)."""
    table = torch.full((int(max(max(classes), int(y.max())) + 1),), -1, dtype=torch.long)
    table[torch.as_tensor(list(classes))] = torch.arange(len(classes))
    out = table[y]
    if (out < 0).any():
        raise MentorError(f"labels {sorted(set(y[out < 0].tolist()))} are not among the "
                          f"classes {list(classes)}; expected only those classes")
    return out


@dataclass
class OODArm:
    arm: str
    model: FeatureStudent
    best_epoch: int
    val_accuracy: float


def arm_loss(arm: str, model: FeatureStudent, x: Tensor, y: Tensor, v: Tensor, text: Tensor,
            k: int) -> Tensor:
    """The arm's training loss on one batch (``v``: the teacher's image features of ``x``,
    ``text``: the training classes' text embeddings, ``y``: positions among them)."""
    u = model(x)
    if arm == "ce":
        return nn.functional.cross_entropy(model.head(u), y)
    loss = l_cls(u, text, y)
    if arm in ("cls+feat", "cls+feat+vlalign"):
        loss = loss + l_mse(u, v) + l_cst(u, v)
    if arm == "cls+feat+vlalign":
        loss = loss + l_vlalign(u, v, text, k, y=y, teacher_correct=True)
    return loss


@torch.no_grad()
def predict_seen(model: FeatureStudent, arm: str, x: Tensor, text: Tensor) -> Tensor:
    """Positions among the training classes: the ``ce`` head's arg-max, else the nearest
    training-class text."""
    model.eval()
    u = model(x)
    return model.head(u).argmax(-1) if arm == "ce" else nearest_text(u, text)


def train_arm(arm: str, teacher, x: Tensor, y: Tensor, x_val: Tensor, y_val: Tensor,
              classes: Sequence[int], *, epochs: int = 60, lr: float = 3e-3,
              batch_size: int = 64, k: int = 5, seed: int = 0, hidden: int = 64) -> OODArm:
    """Train one arm on rows ``x`` whose labels ``y`` are all in ``classes``; keep the epoch
    with the best validation accuracy on ``(x_val, y_val)`` (also only those classes)."""
    if arm not in ARMS:
        raise MentorError(f"ood arm {arm!r} is unknown; expected one of {list(ARMS)}")
    positive_int("train_arm epochs", epochs)
    positive_int("train_arm batch_size", batch_size)
    y, yv = local_labels(y, classes), local_labels(y_val, classes)
    text = teacher.text_features[list(classes)]
    v = teacher.image_features(x)
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = FeatureStudent(x.shape[1], text.shape[1], len(classes), hidden)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    best = (-1.0, 0, copy.deepcopy(model.state_dict()))
    for epoch in range(1, epochs + 1):
        model.train()
        for rows in torch.randperm(len(x), generator=g).split(batch_size):
            loss = arm_loss(arm, model, x[rows], y[rows], v[rows], text, k)
            opt.zero_grad()
            loss.backward()
            opt.step()
        acc = float((predict_seen(model, arm, x_val, text) == yv).float().mean())
        if acc > best[0]:
            best = (acc, epoch, copy.deepcopy(model.state_dict()))
    model.load_state_dict(best[2])
    model.eval()
    return OODArm(arm, model, best[1], best[0])


@torch.no_grad()
def zero_shot_accuracy(result: OODArm, teacher, x: Tensor, y: Tensor,
                       classes: Sequence[int], seen: bool = False) -> float:
    """Accuracy on rows of ``classes``: for ``seen`` classes as the arm predicts them
    (:func:`predict_seen`), else by the nearest of those classes' texts (zero-shot)."""
    yl = local_labels(y, classes)
    text = teacher.text_features[list(classes)]
    if seen:
        pred = predict_seen(result.model, result.arm, x, text)
    else:
        pred = nearest_text(result.model(x), text)
    return float((pred == yl).float().mean())
