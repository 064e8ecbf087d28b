"""TRS's parts on heatmaps (METHODS.md §11; "Teacher-Reviewer-Student", semi-supervised 2D
pose): geometrically aligned views, the mean-teacher and reviewer consistency terms, and
the reviewer itself -- mentor's ``reviewer`` updater (:class:`mentor.updates.pairs.ReviewerBank`)
reused as it is.

**Aligned views.** A :class:`View` per example is a horizontal flip (optional) followed by
an integer shift ``(dx, dy)`` (content moves right by ``dx`` and down by ``dy``; pixels
shifted in are 0). :func:`view_images` applies it to images, :func:`view_heatmaps` to
heatmaps -- the same pixel moves *and*, on a flip, the channels of each left/right pair
swapped -- and :func:`view_keypoints` to keypoints (``x → size − 1 − x`` on a flip, then
``+ (dx, dy)``, the pairs swapped). So the heatmaps of viewed keypoints equal the viewed
heatmaps (up to the tails cut at the frame): a teacher that reads the plain image and
whose heatmaps are carried through the student's view gives a target aligned with what
the student sees.

**Consistency.** Student on the viewed (and noised) unlabeled image, targets the teacher's
and the reviewer's heatmaps of the plain image carried through the same view:
``MSE(h_s, V(h_t)) + λ_r · MSE(h_s, V(h_r))`` per example (:func:`consistency`).

**Reviewer** (``[reconstruction]`` of the replacement rule, as METHODS.md §11 and mentor's
updater): the teacher follows the student by EMA; every period the reviewer becomes a
copy of the teacher if the teacher's mean confidence over the period beat the best
period so far. mentor's ``ReviewerBank`` scores confidence as a classifier's mean maximum
probability, accumulated in its teacher's ``outputs``; for heatmaps the confidence is
the mean over images and keypoints of the heatmap's maximum (:func:`heatmap_confidence`),
which :func:`record_confidence` adds to the same accumulators. The updater's EMA step,
replacement rule and state (``state_dict``) are used unchanged; only the confidence
measure is the heatmap one. Multi-level heads and Keypoint-Mix (§11's other parts) are not
here.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..errors import MentorError
from ..updates import EMA
from ..updates.pairs import ReviewedTeacher, ReviewerBank
from .metrics import heatmap_mse


@dataclass(frozen=True)
class View:
    """Per example: ``flip`` ``(B,)`` bool, ``shift`` ``(B, 2)`` integer ``(dx, dy)``."""

    flip: Tensor
    shift: Tensor

    def __len__(self) -> int:
        return len(self.flip)


def random_views(n: int, generator: torch.Generator, max_shift: int = 3,
                 flip: bool = True) -> View:
    """``n`` views: a flip with probability 1/2 (when ``flip``), shifts uniform in
    ``-max_shift..max_shift`` on each axis."""
    if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
        raise MentorError(f"max_shift must be an integer >= 0, got {max_shift!r}")
    flips = torch.rand(n, generator=generator) < 0.5
    if not flip:
        flips = torch.zeros(n, dtype=torch.bool)
    shift = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=generator)
    return View(flips, shift)


def _check(view: View, x: Tensor, name: str) -> None:
    if len(view) != len(x) or tuple(view.shift.shape) != (len(x), 2):
        raise MentorError(f"view holds {len(view)} examples; expected {len(x)}, one per "
                          f"row of {name}")


def _shift(x: Tensor, shift: Tensor) -> Tensor:
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    for i, (dx, dy) in enumerate(shift.tolist()):
        if abs(dx) >= w or abs(dy) >= h:
            continue
        out[i, :, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
            x[i, :, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def _perm(flip_pairs, k: int) -> list[int]:
    p = list(range(k))
    for a, b in flip_pairs:
        p[a], p[b] = b, a
    return p


def view_images(x: Tensor, view: View) -> Tensor:
    """Images ``(B, C, H, W)`` seen through ``view`` (flip, then shift)."""
    _check(view, x, "images")
    f = view.flip.view(-1, 1, 1, 1)
    return _shift(torch.where(f, x.flip(-1), x), view.shift)


def view_heatmaps(h: Tensor, view: View, flip_pairs) -> Tensor:
    """Heatmaps ``(B, K, H, W)`` through ``view``: pixels as :func:`view_images`, and on a
    flip the channels of each pair of ``flip_pairs`` swapped."""
    _check(view, h, "heatmaps")
    perm = _perm(flip_pairs, h.shape[1])
    f = view.flip.view(-1, 1, 1, 1)
    return _shift(torch.where(f, h.flip(-1)[:, perm], h), view.shift)


def view_keypoints(kp: Tensor, view: View, size: int, flip_pairs) -> Tensor:
    """Keypoints ``(B, K, 2)`` (``(x, y)``) through ``view`` (they may leave the frame)."""
    _check(view, kp, "keypoints")
    perm = _perm(flip_pairs, kp.shape[1])
    f = view.flip.view(-1, 1, 1)
    flipped = kp[:, perm].clone()
    flipped[..., 0] = size - 1 - flipped[..., 0]
    return torch.where(f, flipped, kp) + view.shift.to(kp.dtype).view(-1, 1, 2)


def heatmap_confidence(h: Tensor) -> Tensor:
    """Per image ``(B,)``: the mean over keypoints of each heatmap channel's maximum."""
    return h.flatten(2).amax(-1).mean(-1)


def consistency(student: Tensor, teacher: Tensor, view: View, flip_pairs,
                reviewer: Tensor | None = None, reviewer_weight: float = 0.0) -> Tensor:
    """Per example ``(B,)``: ``MSE(h_s, V(h_t)) + λ_r · MSE(h_s, V(h_r))`` with ``h_s`` the
    student's heatmaps of the viewed image and ``h_t``, ``h_r`` the teacher's and the
    reviewer's of the plain one (targets carry no gradient)."""
    loss = heatmap_mse(student, view_heatmaps(teacher.detach(), view, flip_pairs))
    if reviewer is not None and reviewer_weight > 0:
        loss = loss + reviewer_weight * heatmap_mse(
            student, view_heatmaps(reviewer.detach(), view, flip_pairs))
    return loss


def mean_teacher(student: nn.Module, momentum: float, warmup: bool = False):
    """``(updater, teacher module)``: mentor's ``ema`` updater and a copy of ``student``
    (``updater.update(teacher, student, step)`` after every optimizer step; momentum 0
    copies the student, 1 freezes the teacher)."""
    updater = EMA(momentum, warmup=warmup)
    teacher = copy.deepcopy(student)
    teacher.requires_grad_(False)
    return updater, teacher


def reviewed_teacher(student: nn.Module, momentum: float, review_every: int,
                     warmup: bool = False) -> tuple[ReviewerBank, ReviewedTeacher]:
    """``(updater, teacher)``: mentor's ``reviewer`` updater with a period of
    ``review_every`` steps and the :class:`ReviewedTeacher` it builds from a copy of
    ``student`` (``teacher.module`` the EMA, ``teacher.reviewer.module`` the reviewer)."""
    if isinstance(review_every, bool) or not isinstance(review_every, int) or \
            review_every < 1:
        raise MentorError(f"review_every must be a positive integer, got {review_every!r}")
    bank = ReviewerBank(momentum, every_epochs=1, warmup=warmup)
    bank.bind_steps(review_every)
    k = getattr(student, "num_keypoints", 1)
    return bank, bank.build_teacher(None, copy.deepcopy(student), k)


def record_confidence(teacher: ReviewedTeacher, heatmaps: Tensor) -> None:
    """Add the teacher's heatmap confidence on a batch to the accumulators the reviewer's
    replacement rule reads."""
    c = heatmap_confidence(heatmaps.detach())
    teacher.conf_sum += float(c.sum())
    teacher.conf_n += len(c)
