"""S³'s parts: baseline rescaling, the EMA teacher, occlusion-aware weights and the losses
(METHODS.md §53; Xu et al., "Unsupervised Stereo via Multi-Baseline Geometry-Consistent
Self-Training", arXiv 2508.10838).

The student reads the pair ``(reference, target at b_s)``; an EMA copy of it, the teacher,
reads the same reference with a target at a *wider* baseline ``b_t`` -- pixels the
student's target hides may be visible to the teacher's. The teacher's disparity is brought
to the student's baseline by :func:`rescale` (``d̂ = d_t · b_s / b_t``: disparity is
proportional to the baseline for a fixed reference view) and weighted per pixel by
:func:`occlusion_weights`.

Conventions: a disparity map is ``(N, H, W)`` in pixels of its own pair; an image is
``(N, 1, H, W)``; the target is right of the reference, so reference pixel ``x`` at
disparity ``d`` is at ``x - d`` in the target. Losses return one value per example (the mean
over its pixels); the caller reduces.

Reconstructions ``[reconstruction]`` (the catalogue marks the weight form ``[recon]``; the
paper's text read for this module gives no formula):

- occlusion-aware weight: the teacher's left-right consistency at ``x``,
  ``Δ(x) = |d_L(x) − d_R(x − d_L(x))|`` (``d_R`` the teacher's disparity of its target
  view, :func:`right_disparity`, read by linear interpolation), gives ``w(x) = 1`` where
  ``Δ ≤ threshold`` and ``w(x) = occluded_weight`` (0.1) elsewhere, including where
  ``x − d_L(x)`` leaves the frame. The weight is not zero: the student still learns to
  complete teacher-occluded pixels, down-weighted.
- pseudo-label term: ``w · ρ(d_s − d̂)`` with ``ρ`` the L1 loss or, with ``beta > 0``, the
  smooth L1 (Huber) loss stereo networks are usually trained with (quadratic below
  ``beta`` pixels, so a sub-pixel disagreement with the teacher pulls weakly and the
  photometric term keeps the fine match; linear beyond).
- photometric term: L1 between the reference and the target warped by the student's
  disparity (bilinear, border padding), optionally masked (the trainer masks the pixels
  that fail the *student's own* left-right check, where no correspondence exists -- the
  usual occlusion-masked photometric loss; the teacher's labels are what supervise them);
  smoothness: the edge-aware first-order penalty ``|∂d| · exp(−edge · |∂I|)`` along x and
  y (Monodepth's form, ``edge`` 10, on pixel disparities).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import DataError, MentorError
from .model import sample_columns


def _check_disparity(name: str, d: Tensor) -> None:
    if not torch.is_tensor(d) or d.dim() != 3 or not d.is_floating_point():
        raise DataError(f"{name} has shape {tuple(getattr(d, 'shape', ()))}; expected "
                        "(N, H, W) disparities in pixels")


def _check_image(name: str, image: Tensor, d: Tensor) -> None:
    if not torch.is_tensor(image) or image.dim() != 4 or image.shape[1] != 1 or \
            tuple(image.shape[2:]) != tuple(d.shape[1:]) or len(image) != len(d):
        raise DataError(f"{name} has shape {tuple(getattr(image, 'shape', ()))}; expected "
                        f"{(len(d), 1, *d.shape[1:])} to match the disparity map")


def rescale(disparity: Tensor, student_baseline: float, teacher_baseline: float) -> Tensor:
    """The teacher's disparity at the student's baseline: ``d · b_s / b_t``."""
    for name, b in (("student_baseline", student_baseline),
                    ("teacher_baseline", teacher_baseline)):
        if not float(b) > 0:
            raise MentorError(f"{name} must be > 0, got {b!r}")
    return disparity * (float(student_baseline) / float(teacher_baseline))


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    """``θ_t ← m·θ_t + (1 − m)·θ_s`` for every parameter and floating buffer, in place;
    momentum 0 copies the student, 1 freezes the teacher."""
    m = float(momentum)
    if not 0.0 <= m <= 1.0:
        raise MentorError(f"momentum must be in [0, 1], got {momentum!r}")
    t_params, s_params = list(teacher.parameters()), list(student.parameters())
    if len(t_params) != len(s_params) or any(a.shape != b.shape
                                             for a, b in zip(t_params, s_params)):
        raise MentorError("teacher and student must have the same architecture for an EMA "
                          "update; expected a copy of the student")
    for t, s in zip(t_params, s_params):
        t.mul_(m).add_(s.detach(), alpha=1.0 - m)
    for t, s in zip(teacher.buffers(), student.buffers()):
        if t.is_floating_point():
            t.mul_(m).add_(s, alpha=1.0 - m)
        else:
            t.copy_(s)


def warp(target: Tensor, disparity: Tensor) -> Tensor:
    """The target view resampled onto the reference: ``target(x − d(x))`` (bilinear,
    border padding), ``(N, 1, H, W)``."""
    _check_disparity("disparity", disparity)
    _check_image("target", target, disparity)
    w = disparity.shape[-1]
    xs = torch.arange(w, dtype=disparity.dtype, device=disparity.device)
    return sample_columns(target, xs - disparity, "border")


def right_disparity(model: nn.Module, ref: Tensor, target: Tensor, max_disp: int) -> Tensor:
    """The model's disparity of the *target* view (target pixel ``x'`` is at ``x' + d_R``
    in the reference): both views mirrored left-right and swapped, so the mirrored target
    is the left view, and the answer mirrored back."""
    flip = lambda t: t.flip(-1)  # noqa: E731
    return model(flip(target), flip(ref), max_disp).flip(-1)


def lr_difference(d_left: Tensor, d_right: Tensor) -> tuple[Tensor, Tensor]:
    """``(Δ, inside)``: ``Δ(x) = |d_L(x) − d_R(x − d_L(x))|`` and whether ``x − d_L(x)``
    lies in the frame (``≥ 0``)."""
    _check_disparity("d_left", d_left)
    _check_disparity("d_right", d_right)
    if d_left.shape != d_right.shape:
        raise DataError(f"d_right has shape {tuple(d_right.shape)} but d_left has shape "
                        f"{tuple(d_left.shape)}; expected the same shape")
    w = d_left.shape[-1]
    xs = torch.arange(w, dtype=d_left.dtype, device=d_left.device)
    x_other = xs - d_left
    seen = sample_columns(d_right[:, None], x_other, "border")[:, 0]
    return (d_left - seen).abs(), (x_other >= 0) & (x_other <= w - 1)


def occlusion_weights(d_left: Tensor, d_right: Tensor, threshold: float = 1.0,
                      occluded_weight: float = 0.1) -> Tensor:
    """Per-pixel weights ``(N, H, W)`` from the teacher's left-right consistency: 1 where
    ``Δ ≤ threshold`` and ``x − d_L(x)`` is in the frame, ``occluded_weight`` elsewhere
    (module docstring, ``[reconstruction]``)."""
    if not float(threshold) >= 0:
        raise MentorError(f"threshold must be >= 0, got {threshold!r}")
    if not 0.0 <= float(occluded_weight) <= 1.0:
        raise MentorError(f"occluded_weight must be in [0, 1], got {occluded_weight!r}")
    diff, inside = lr_difference(d_left, d_right)
    consistent = (diff <= float(threshold)) & inside
    return torch.where(consistent, torch.ones_like(diff),
                       torch.full_like(diff, float(occluded_weight)))


def photometric_loss(ref: Tensor, target: Tensor, disparity: Tensor,
                     mask: Tensor | None = None) -> Tensor:
    """Per example: the mean over pixels of ``m · |ref − warp(target, d)|`` (``m`` 1 when
    ``mask`` is None; a float or boolean ``(N, H, W)`` map otherwise)."""
    _check_image("ref", ref, disparity)
    err = (ref - warp(target, disparity)).abs()[:, 0]
    if mask is not None:
        if tuple(mask.shape) != tuple(disparity.shape):
            raise DataError(f"mask has shape {tuple(mask.shape)} but disparity has shape "
                            f"{tuple(disparity.shape)}; expected the same shape")
        err = err * mask.detach().to(err.dtype)
    return err.mean((1, 2))


def smoothness_loss(disparity: Tensor, image: Tensor, edge: float = 10.0) -> Tensor:
    """Per example: ``mean |∂x d|·e^{−edge·|∂x I|} + mean |∂y d|·e^{−edge·|∂y I|}``."""
    _check_disparity("disparity", disparity)
    _check_image("image", image, disparity)
    img = image[:, 0]
    dx = (disparity[..., 1:] - disparity[..., :-1]).abs() * \
        torch.exp(-edge * (img[..., 1:] - img[..., :-1]).abs())
    dy = (disparity[:, 1:] - disparity[:, :-1]).abs() * \
        torch.exp(-edge * (img[:, 1:] - img[:, :-1]).abs())
    return dx.mean((1, 2)) + dy.mean((1, 2))


def pseudo_label_loss(disparity: Tensor, pseudo: Tensor, weights: Tensor | None = None,
                      beta: float = 0.0) -> Tensor:
    """Per example: the mean over pixels of ``w · ρ(d_s − d̂)`` (``w`` 1 when ``weights`` is
    None) with ``ρ`` the L1 loss for ``beta`` 0 and the smooth L1 (Huber) loss
    ``e² / (2β)`` for ``|e| < β``, ``|e| − β/2`` beyond, otherwise; the pseudo-label
    carries no gradient."""
    _check_disparity("disparity", disparity)
    _check_disparity("pseudo", pseudo)
    if pseudo.shape != disparity.shape:
        raise DataError(f"pseudo has shape {tuple(pseudo.shape)} but disparity has shape "
                        f"{tuple(disparity.shape)}; expected the same shape")
    if not float(beta) >= 0:
        raise MentorError(f"beta must be >= 0, got {beta!r}")
    err = (disparity - pseudo.detach()).abs()
    if float(beta) > 0:
        err = torch.where(err < beta, 0.5 * err * err / beta, err - 0.5 * beta)
    if weights is not None:
        if weights.shape != disparity.shape:
            raise DataError(f"weights has shape {tuple(weights.shape)} but disparity has "
                            f"shape {tuple(disparity.shape)}; expected the same shape")
        err = err * weights.detach()
    return err.mean((1, 2))
