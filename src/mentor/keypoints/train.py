"""Semi-supervised keypoint training on TB-KPT (METHODS.md §11 TRS's CPU experiment, without
multi-level heads and Keypoint-Mix).

Every arm trains the same :class:`~mentor.keypoints.model.TinyPose` (``seed`` sets its
initial weights and every random draw) for ``steps`` (500) Adam steps (lr 2e-3). Each step
reads ``batch_size`` (16) labeled images in a seeded order, each through a random aligned
view (:func:`~mentor.keypoints.trs.random_views`: flip with probability 1/2, shift up to
``max_shift`` (2) px) plus Gaussian pixel noise of std ``noise`` (0.05); the supervised
term is the heatmap MSE against the viewed Gaussian targets (σ of the data). The labeled
stream -- order, views and noise -- is drawn from its own generator, so it is the same in
every arm. The teacher arms also read ``unlabeled_batch`` (32) unlabeled images per step
(their own generator): the student sees each through a random view plus noise, the
teacher (and the reviewer) the plain image, and the consistency term
(:func:`~mentor.keypoints.trs.consistency`) compares the student with their heatmaps
carried through the same view. Loss

    ``MSE_sup + ramp(step) · λ_u · (MSE(h_s, V(h_t)) + λ_r · MSE(h_s, V(h_r)))``

with ``λ_u`` ``unsup_weight`` (1), ``ramp`` rising linearly from 0 to 1 over ``rampup``
(100) steps, and the teacher an EMA of the student with momentum ``momentum`` (0.95)
updated after every step. These values are this module's choices ``[reconstruction]``;
the momentum (0.95 rather than 0.99), the 5 % labeled fraction and ``alpha`` 0.05 were set
from development runs on testbed seed 0 read through validation PCK only (at 10 % labels
and ``alpha`` 0.1 the supervised arm's validation PCK was already 0.98: no room left).

The arms (:data:`ARMS`):

- ``supervised``: the labeled term only;
- ``mean_teacher``: + the EMA teacher's term (mentor's ``ema`` updater), ``λ_r = 0``;
- ``trs``: + the reviewer's term with ``λ_r`` ``reviewer_weight`` (0.5), the reviewer
  from mentor's ``reviewer`` updater with a period of ``review_every`` (50) steps and the
  heatmap confidence (:mod:`mentor.keypoints.trs`).

Model selection reads the validation images' PCK only (every ``eval_every`` (50) steps
and at the end; the first step with the highest value is kept; arg-max keypoints,
``alpha`` 0.05 of the image side: 1.2 px at 24 px); the test images are scored once, at
the end.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from .._util.args import non_negative, non_negative_int, positive_int, unit_interval
from ..errors import DataError, MentorError
from .metrics import argmax_keypoints, gaussian_heatmaps, heatmap_mse, pck
from .model import TinyPose, tiny_pose
from .testbed import KeypointData
from .trs import (consistency, mean_teacher, random_views, record_confidence,
                  reviewed_teacher, view_heatmaps, view_images)


@dataclass(frozen=True)
class Arm:
    """Whether the arm has an EMA teacher and whether a reviewer adds its term."""

    teacher: bool
    reviewer: bool


ARMS: dict[str, Arm] = {
    "supervised": Arm(False, False),
    "mean_teacher": Arm(True, False),
    "trs": Arm(True, True),
}


@dataclass
class TrainedPose:
    """A trained student (eval mode): the arm, the selected step, its validation PCK, the
    test figures (``pck``, ``mse``: heatmap MSE against the Gaussian targets), the
    validation PCK at every evaluation (``history``: ``(step, PCK)``), the teacher at the
    last step and, for ``trs``, how often the reviewer was replaced."""

    arm: str
    model: TinyPose
    best_step: int
    val_pck: float
    test: dict[str, float]
    history: list[tuple[int, float]]
    teacher: nn.Module | None = None
    reviewer_replaced: int = 0


def predict(model: nn.Module, data: KeypointData, ids: torch.Tensor,
            batch_size: int = 128) -> torch.Tensor:
    """The model's heatmaps ``(len(ids), K, S, S)`` of images ``ids`` (no gradient)."""
    was = model.training
    model.eval()
    with torch.no_grad():
        out = [model(data.images[b]) for b in ids.split(batch_size)]
    model.train(was)
    if not out:
        return data.images.new_zeros((0, data.num_keypoints, data.size, data.size))
    return torch.cat(out)


def evaluate(model: nn.Module, data: KeypointData, split: str, alpha: float = 0.05,
             subpixel: bool = False) -> dict[str, float]:
    """PCK@``alpha`` (arg-max keypoints) and heatmap MSE of ``model`` on ``split``
    (``val`` or ``test``)."""
    if split not in ("val", "test"):
        raise MentorError(f"split must be 'val' or 'test', got {split!r}")
    ids = getattr(data, split)
    if not len(ids):
        raise DataError(f"split {split!r} names no image; expected at least one to evaluate")
    h = predict(model, data, ids)
    kp = data.keypoints[ids]
    return {"pck": pck(argmax_keypoints(h, subpixel), kp, data.size, alpha),
            "mse": float(heatmap_mse(h, gaussian_heatmaps(kp, data.size,
                                                          data.sigma)).mean())}


def _stream(ids: torch.Tensor, batch_size: int, generator: torch.Generator):
    batches: list[torch.Tensor] = []
    while True:
        if not batches:
            batches = list(ids[torch.randperm(len(ids), generator=generator)]
                           .split(batch_size))
        yield batches.pop(0)


def train_keypoints(data: KeypointData, arm: str = "trs", *, seed: int = 0,
                    steps: int = 500, batch_size: int = 16, unlabeled_batch: int = 32,
                    lr: float = 2e-3, momentum: float = 0.95, unsup_weight: float = 1.0,
                    rampup: int = 100, reviewer_weight: float = 0.5,
                    review_every: int = 50, max_shift: int = 2, noise: float = 0.05,
                    eval_every: int = 50, alpha: float = 0.05, width: int = 16) -> TrainedPose:
    """Train one arm (module docstring) and keep the weights of the best validation PCK."""
    if arm not in ARMS:
        raise MentorError(f"arm must be one of {', '.join(ARMS)}, got {arm!r}")
    for name, v in (("steps", steps), ("batch_size", batch_size),
                    ("unlabeled_batch", unlabeled_batch), ("eval_every", eval_every)):
        positive_int(name, v)
    non_negative_int("rampup", rampup)
    for name, v in (("unsup_weight", unsup_weight), ("reviewer_weight", reviewer_weight),
                    ("noise", noise)):
        non_negative(name, v)
    unit_interval("momentum", momentum)
    if not len(data.labeled):
        raise DataError("labeled names no image; expected labeled training images")
    if not len(data.val):
        raise DataError("val names no image; expected validation images for selection")
    spec = ARMS[arm]
    if spec.teacher and not len(data.unlabeled):
        raise DataError(f"unlabeled names no image; expected unlabeled images for arm {arm!r}")
    torch.manual_seed(seed)
    student = tiny_pose(data.num_keypoints, width)
    bank, teacher, reviewer = None, None, None
    if spec.reviewer:
        bank, reviewed = reviewed_teacher(student, momentum, review_every)
        teacher, reviewer = reviewed.module, reviewed.reviewer.module
    elif spec.teacher:
        bank, teacher = mean_teacher(student, momentum)
    g_lab = torch.Generator().manual_seed(seed)
    g_unl = torch.Generator().manual_seed(seed + 7919)
    labeled = _stream(data.labeled, batch_size, g_lab)
    unlabeled = _stream(data.unlabeled, unlabeled_batch, g_unl)
    targets = gaussian_heatmaps(data.keypoints, data.size, data.sigma)
    pairs = data.flip_pairs
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    best_state, best_step, best_val = copy.deepcopy(student.state_dict()), 0, -1.0
    history: list[tuple[int, float]] = []
    for step in range(1, steps + 1):
        student.train()
        b = next(labeled)
        v = random_views(len(b), g_lab, max_shift)
        x = view_images(data.images[b], v)
        x = x + noise * torch.randn(x.shape, generator=g_lab)
        loss = heatmap_mse(student(x), view_heatmaps(targets[b], v, pairs)).mean()
        if teacher is not None and unsup_weight > 0:
            u = next(unlabeled)
            vu = random_views(len(u), g_unl, max_shift)
            xu = view_images(data.images[u], vu)
            xu = xu + noise * torch.randn(xu.shape, generator=g_unl)
            with torch.no_grad():
                h_t = teacher(data.images[u])
                h_r = reviewer(data.images[u]) if reviewer is not None else None
            if spec.reviewer:
                record_confidence(reviewed, h_t)
            ramp = min(1.0, step / rampup) if rampup else 1.0
            loss = loss + ramp * unsup_weight * consistency(
                student(xu), h_t, vu, pairs, h_r, reviewer_weight).mean()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"keypoint loss is {float(loss)} at step {step} of arm "
                                     f"{arm!r}; lower lr ({lr})")
        opt.zero_grad()
        loss.backward()
        opt.step()
        if bank is not None:
            bank.update(teacher, student, step)
        if step % eval_every == 0 or step == steps:
            score = evaluate(student, data, "val", alpha)["pck"]
            history.append((step, score))
            if score > best_val:
                best_state, best_step, best_val = copy.deepcopy(student.state_dict()), step, \
                    score
    student.load_state_dict(best_state)
    student.eval()
    replaced = bank.replaced if spec.reviewer else 0
    return TrainedPose(arm, student, best_step, best_val, evaluate(student, data, "test",
                                                                   alpha),
                       history, teacher, replaced)


def compare_arms(data: KeypointData, seed: int = 0, arms: tuple[str, ...] = tuple(ARMS),
                 **train) -> dict[str, TrainedPose]:
    """Every arm of ``arms`` with the same data, seed, labeled stream and budget; ``train``:
    further arguments of :func:`train_keypoints`."""
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise MentorError(f"arms names {unknown[0]!r}; expected some of {', '.join(ARMS)}")
    return {arm: train_keypoints(data, arm, seed=seed, **train) for arm in arms}
