"""Train a stereo student without disparity labels, with or without an S³ teacher
(METHODS.md §53's CPU experiment; Xu et al., "Unsupervised Stereo via Multi-Baseline
Geometry-Consistent Self-Training", arXiv 2508.10838).

Every arm trains the same :class:`~mentor.stereo.model.TinyStereo` on the same training
scenes of a :class:`~mentor.stereo.testbed.StereoData` with the same budget: ``steps``
(400) Adam steps (lr 2e-3) on mini-batches of ``batch_size`` (16) scenes drawn in a seeded
order (``seed`` also sets the initial weights), no augmentation. The student reads
``(ref, view_b)`` with the search range ``0..max_disparity``; its loss per example is

    ``λ_ph · photometric·m + λ_sm · smoothness + ramp(step) · λ_pl · mean w·ρ(d_s − d̂)``

(:mod:`mentor.stereo.s3`): ``λ_ph`` 1, ``λ_sm`` 0.05, ``λ_pl`` 0.3; ``m`` masks the pixels
that fail the student's own left-right check (1 px), in every arm; ``ρ`` the smooth L1 loss
with ``β`` 1 px; ``ramp`` rises linearly from 0 to 1 over the first ``warmup`` (100) steps,
while the teacher -- an EMA of a student that starts from scratch -- is still poor. The
teacher is a copy of the student updated after every step with momentum ``momentum``
(0.95); it reads its pair with the search range scaled by ``b_t / b_s`` and gives ``d̂`` and
the weights ``w`` of its left-right consistency
(:func:`~mentor.stereo.s3.occlusion_weights`: threshold 1 px at the teacher's baseline,
``occluded_weight`` 0.1). The weights, momentum, warm-up and smooth L1 are this module's
choices ``[reconstruction]``, fixed in development runs on testbed seeds 0 and 1 (read
through their validation EPE traces) before the measurement ran: with ``λ_pl`` 0.6 or
more, or a longer EMA horizon (0.99), the students drifted in visible regions (the teacher
on the wide pair is less precise there than the student on its own pair, and each follows
the other); with an unmasked photometric term the teacher's labels hardly moved the
occluded pixels at ``λ_pl`` 0.3 (the photometric term pulls them to a wrong match).

The arms (:data:`ARMS`), differing only in the teacher:

- ``photometric``: no teacher (``λ_pl = 0``) -- masked photometric + smoothness only;
- ``symmetric``: the teacher reads the student's own pair ``(ref, view_b)``: conventional
  self-training (its disparity used as it is, ``b_t = b_s``);
- ``no_rescale``: the teacher reads ``(ref, view_2b)`` but its disparity is used as it is,
  not rescaled to the student's baseline (the issue's ablation);
- ``s3``: the teacher reads ``(ref, view_2b)`` and ``d̂ = d_t · b_s / b_t``.

Model selection reads the validation scenes' EPE only (every ``eval_every`` (50) steps and
at the end; the first step with the lowest value is kept); the test scenes are scored once,
at the end, overall and on the pixels occluded / not occluded in the student's pair
(``occluded_b``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from .._util.args import non_negative, non_negative_int, positive_int, unit_interval
from ..errors import DataError, MentorError
from .metrics import region_metrics
from .model import TinyStereo, tiny_stereo
from .s3 import (ema_update, occlusion_weights, photometric_loss, pseudo_label_loss,
                 rescale, right_disparity, smoothness_loss)
from .testbed import StereoData


@dataclass(frozen=True)
class Arm:
    """Which pair the teacher reads (``None``: no teacher) and whether its disparity is
    rescaled to the student's baseline."""

    teacher_view: str | None
    rescaled: bool


ARMS: dict[str, Arm] = {
    "photometric": Arm(None, False),
    "symmetric": Arm("view_b", True),
    "no_rescale": Arm("view_2b", False),
    "s3": Arm("view_2b", True),
}


@dataclass
class TrainedStereo:
    """A trained student (eval mode): the arm, the selected step, its validation EPE, the
    test figures of :func:`~mentor.stereo.metrics.region_metrics`, the validation EPE at
    every evaluation (``history``: ``(step, EPE)``) and the teacher at the last step
    (``None`` for the photometric arm)."""

    arm: str
    model: TinyStereo
    best_step: int
    val_epe: float
    test: dict[str, float]
    history: list[tuple[int, float]]
    teacher: TinyStereo | None = None


def predict(model: nn.Module, data: StereoData, ids: torch.Tensor, view: str = "view_b",
            batch_size: int = 64) -> torch.Tensor:
    """The model's disparity ``(len(ids), H, W)`` of the reference views of scenes ``ids``
    against ``view`` (search range scaled with the view's baseline)."""
    if view not in ("view_b", "view_2b"):
        raise MentorError(f"view must be 'view_b' or 'view_2b', got {view!r}")
    max_disp = data.max_disparity * (2 if view == "view_2b" else 1)
    was = model.training
    model.eval()
    with torch.no_grad():
        out = [model(data.ref[b], getattr(data, view)[b], max_disp)
               for b in ids.split(batch_size)]
    model.train(was)
    return torch.cat(out) if out else data.disparity[:0]


def evaluate(model: nn.Module, data: StereoData, split: str) -> dict[str, float]:
    """:func:`~mentor.stereo.metrics.region_metrics` of ``model`` on ``split`` (``val`` or
    ``test``) against the true disparity, regions from ``occluded_b``."""
    if split not in ("val", "test"):
        raise MentorError(f"split must be 'val' or 'test', got {split!r}")
    ids = getattr(data, split)
    if not len(ids):
        raise DataError(f"split {split!r} names no scene; expected at least one to evaluate")
    return region_metrics(predict(model, data, ids), data.disparity[ids],
                          data.occluded_b[ids])


def pseudo_labels(teacher: nn.Module, data: StereoData, batch: torch.Tensor, arm: str,
                  lr_threshold: float = 1.0,
                  occluded_weight: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """``(d̂, w)`` ``(len(batch), H, W)``: what ``teacher`` gives the student of ``arm`` on
    scenes ``batch`` -- its disparity of ``(ref, arm's teacher view)`` (search range scaled
    by ``b_t / b_s``), rescaled to the student's baseline when the arm says so, and the
    weights of its left-right consistency (no gradient)."""
    spec = ARMS.get(arm)
    if spec is None or spec.teacher_view is None:
        with_teacher = ", ".join(a for a, v in ARMS.items() if v.teacher_view)
        raise MentorError(f"arm must be one with a teacher ({with_teacher}), got {arm!r}")
    b_s = float(data.baselines[0])
    b_t = float(data.baselines[0 if spec.teacher_view == "view_b" else 1])
    t_disp = int(round(data.max_disparity * b_t / b_s))
    ref, target = data.ref[batch], getattr(data, spec.teacher_view)[batch]
    was = teacher.training
    teacher.eval()
    with torch.no_grad():
        d_t = teacher(ref, target, t_disp)
        w = occlusion_weights(d_t, right_disparity(teacher, ref, target, t_disp),
                              lr_threshold, occluded_weight)
    teacher.train(was)
    return (rescale(d_t, b_s, b_t) if spec.rescaled else d_t), w


def train_stereo(data: StereoData, arm: str = "s3", *, seed: int = 0, steps: int = 400,
                 batch_size: int = 16, lr: float = 2e-3, momentum: float = 0.95,
                 warmup: int = 100, photometric_weight: float = 1.0,
                 smooth_weight: float = 0.05, pseudo_weight: float = 0.3,
                 pseudo_beta: float = 1.0, lr_threshold: float = 1.0,
                 occluded_weight: float = 0.1, photometric_mask: bool = True,
                 eval_every: int = 50, features: int = 12, hidden: int = 16) -> TrainedStereo:
    """Train one arm (module docstring) and keep the weights of the best validation EPE."""
    if arm not in ARMS:
        raise MentorError(f"arm must be one of {', '.join(ARMS)}, got {arm!r}")
    for name, v in (("steps", steps), ("batch_size", batch_size), ("eval_every", eval_every)):
        positive_int(name, v)
    non_negative_int("warmup", warmup)
    for name, v in (("photometric_weight", photometric_weight),
                    ("smooth_weight", smooth_weight), ("pseudo_weight", pseudo_weight)):
        non_negative(name, v)
    unit_interval("momentum", momentum)
    if not len(data.train):
        raise DataError("train names no scene; expected training scenes")
    if not len(data.val):
        raise DataError("val names no scene; expected validation scenes for selection")
    spec = ARMS[arm]
    torch.manual_seed(seed)
    student = tiny_stereo(features, hidden)
    teacher = copy.deepcopy(student) if spec.teacher_view else None
    if teacher is not None:
        teacher.requires_grad_(False)
    order = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    best_state, best_step, best_val = copy.deepcopy(student.state_dict()), -1, float("inf")
    history: list[tuple[int, float]] = []
    ids = data.train
    batches: list[torch.Tensor] = []
    for step in range(1, steps + 1):
        if not batches:
            batches = list(ids[torch.randperm(len(ids), generator=order)].split(batch_size))
        batch = batches.pop(0)
        ref, target = data.ref[batch], data.view_b[batch]
        student.train()
        d = student(ref, target, data.max_disparity)
        mask = None
        if photometric_mask:
            with torch.no_grad():
                mask = occlusion_weights(d.detach(), right_disparity(
                    student, ref, target, data.max_disparity), lr_threshold, 0.0)
        loss = photometric_weight * photometric_loss(ref, target, d, mask) + \
            smooth_weight * smoothness_loss(d, ref)
        if teacher is not None and pseudo_weight > 0:
            pseudo, w = pseudo_labels(teacher, data, batch, arm, lr_threshold,
                                      occluded_weight)
            ramp = min(1.0, step / warmup) if warmup else 1.0
            loss = loss + ramp * pseudo_weight * pseudo_label_loss(d, pseudo, w, pseudo_beta)
        loss = loss.mean()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"stereo loss is {float(loss)} at step {step} of arm "
                                     f"{arm!r}; lower lr ({lr})")
        opt.zero_grad()
        loss.backward()
        opt.step()
        if teacher is not None:
            ema_update(teacher, student, momentum)
        if step % eval_every == 0 or step == steps:
            score = evaluate(student, data, "val")["epe"]
            history.append((step, score))
            if score < best_val:
                best_state, best_step, best_val = copy.deepcopy(student.state_dict()), step, \
                    score
    student.load_state_dict(best_state)
    student.eval()
    return TrainedStereo(arm, student, best_step, best_val, evaluate(student, data, "test"),
                         history, teacher)


def compare_arms(data: StereoData, seed: int = 0, arms: tuple[str, ...] = tuple(ARMS),
                 **train) -> dict[str, TrainedStereo]:
    """Every arm of ``arms`` with the same data, seed and budget; ``train``: further
    arguments of :func:`train_stereo`. ``result[arm].test`` holds the test EPE overall /
    occluded / non-occluded and the bad-pixel rates."""
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise MentorError(f"arms names {unknown[0]!r}; expected some of {', '.join(ARMS)}")
    return {arm: train_stereo(data, arm, seed=seed, **train) for arm in arms}
