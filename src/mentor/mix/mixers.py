"""Mixers of the semi-supervised engine: small, pure tensor components.

Rows are flat ``x`` ``(B, D)``; ``input_shape`` says how a row is laid out: ``(L,)`` a 1-D
signal (or tabular row), ``(H, W)`` an image, ``(C, H, W)`` an image with channels. Boxes and
patches cover the spatial positions and every channel at once; on 1-D rows a box is a segment.

Every random draw comes from an explicit :class:`torch.Generator`, never the global RNG, so a
run stays a pure function of ``(seed, step)``. Components register in
:data:`mentor.registry.MIXERS` and check their parameters on construction
(:func:`mentor.errors.check_param`).

- :class:`MixUp` (Zhang et al. 2018): convex combination with ``lam ~ Beta(alpha, alpha)``.
- :class:`CutMix` (Yun et al. 2019): paste a box of ``x2`` into ``x1``.
- :class:`BidirectionalCopyPaste` (Bai et al. 2023, METHODS.md §29): a labeled patch in an
  unlabeled image and an unlabeled patch in a labeled image, with one shared mask.
- :class:`MultiScalePatches` (Switch "MSS", METHODS.md §35): the same with several coarse and
  fine patches.
- :class:`FrequencyAmplitudeSwitch` (Switch "FDS", METHODS.md §35): swap the low-frequency
  Fourier amplitude of two batches, keep their phases.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..data.layout import box_mask, check_rows, mixer_grid, rect_mask, spread_channels
from ..errors import MentorError, ParameterError, check_param
from ..registry import MIXERS

# ---------------------------------------------------------------------------------------------
# MixUp
# ---------------------------------------------------------------------------------------------


def _uniform_open(n: int, g: torch.Generator) -> Tensor:
    """``n`` float64 uniforms in ``(0, 1]`` (safe to take the log of)."""
    return 1.0 - torch.rand(n, generator=g, dtype=torch.float64, device=g.device)


def _log_gamma(k: float, n: int, g: torch.Generator) -> Tensor:
    """Logs of ``n`` Gamma(k, 1) draws, float64 (Marsaglia & Tsang 2000, rejection).

    Shapes ``k < 1`` use ``Gamma(k) = Gamma(k + 1)·U^(1/k)``, kept in log space so tiny
    ``k`` does not underflow to zero.
    """
    boost = k < 1
    d = (k + 1.0 if boost else k) - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    out = torch.empty(n, dtype=torch.float64, device=g.device)
    todo = torch.arange(n, device=g.device)
    while len(todo):
        z = torch.randn(len(todo), generator=g, dtype=torch.float64, device=g.device)
        u = _uniform_open(len(todo), g)
        v = (1.0 + c * z) ** 3
        log_v = v.clamp_min(1e-300).log()
        ok = (v > 0) & (u.log() < 0.5 * z * z + d - d * v + d * log_v)
        out[todo[ok]] = math.log(d) + log_v[ok]
        todo = todo[~ok]
    if boost:
        out = out + _uniform_open(n, g).log() / k
    return out


def beta_draw(alpha: float, n: int, g: torch.Generator) -> Tensor:
    """``n`` draws of ``Beta(alpha, alpha)`` from the generator ``g``, float64 on ``g``'s
    device: ``G1 / (G1 + G2)`` for two Gamma(alpha) draws, computed as
    ``sigmoid(log G1 - log G2)``."""
    check_param("mixup", "alpha", alpha, low=0, low_open=True)
    return torch.sigmoid(_log_gamma(alpha, n, g) - _log_gamma(alpha, n, g))


def _col(lam: Tensor, like: Tensor) -> Tensor:
    return lam.to(device=like.device, dtype=like.dtype).view(-1, *([1] * (like.dim() - 1)))


def mixup(x1: Tensor, x2: Tensor, lam: Tensor) -> Tensor:
    """``lam·x1 + (1 - lam)·x2`` row by row; ``lam`` ``(B,)`` is the weight of ``x1``."""
    w = _col(lam, x1)
    return w * x1 + (1 - w) * x2


def mix_probs(p1: Tensor, p2: Tensor, lam: Tensor) -> Tensor:
    """The target of a mixed row: ``lam·p1 + (1 - lam)·p2`` (``lam`` ``(B,)``, weight of
    ``p1``). For :class:`CutMix`, pass ``lam = 1 - area``."""
    return mixup(p1, p2, lam)


@MIXERS.register("mixup", description="convex combination of two rows with lam ~ "
                 "Beta(alpha, alpha) per row", paper="Zhang et al. 2018, mixup: Beyond "
                 "Empirical Risk Minimization (ICLR)")
class MixUp:
    """MixUp (Zhang et al. 2018): ``x = lam·x1 + (1 - lam)·x2``, ``lam ~ Beta(alpha, alpha)``.

    ``mix(x1, x2, g)`` returns the mixed rows and ``lam`` ``(B,)`` (weight of ``x1``); the
    target is :func:`mix_probs` ``(p1, p2, lam)``. Pairing the rows is the caller's choice.
    No ``max(lam, 1 - lam)`` is applied (MixMatch's variant); do it on ``lam`` if wanted.
    """

    def __init__(self, alpha: float = 0.75):
        check_param("mixup", "alpha", alpha, low=0, low_open=True)
        self.alpha = float(alpha)

    def mix(self, x1: Tensor, x2: Tensor, g: torch.Generator) -> tuple[Tensor, Tensor]:
        lam = beta_draw(self.alpha, len(x1), g).to(device=x1.device, dtype=x1.dtype)
        return mixup(x1, x2, lam), lam


# ---------------------------------------------------------------------------------------------
# CutMix
# ---------------------------------------------------------------------------------------------


@MIXERS.register("cutmix", description="paste a random box of x2 into x1 (a segment for "
                 "1-D rows); returns the area taken from x2", paper="Yun et al. 2019, "
                 "CutMix: Regularization Strategy to Train Strong Classifiers with "
                 "Localizable Features (ICCV)")
class CutMix:
    """CutMix (Yun et al. 2019) on :func:`box_mask`: the box's target area fraction is
    uniform in ``[lam_min, lam_max]`` (the paper's ``Beta(1, 1)`` for the defaults).

    ``mix(x1, x2, input_shape, g)`` returns the mixed rows and ``area`` ``(B,)``, the exact
    fraction taken from ``x2``; the target is :func:`mix_probs` ``(p1, p2, 1 - area)``.
    """

    def __init__(self, lam_min: float = 0.0, lam_max: float = 1.0):
        check_param("cutmix", "lam_min", lam_min, low=0, high=1)
        check_param("cutmix", "lam_max", lam_max, low=lam_min, high=1)
        self.lam_min, self.lam_max = float(lam_min), float(lam_max)

    def mix(self, x1: Tensor, x2: Tensor, input_shape: tuple[int, ...],
            g: torch.Generator) -> tuple[Tensor, Tensor]:
        check_rows(x1, input_shape)
        u = torch.rand(len(x1), 3, generator=g, device=g.device)
        mask, area = box_mask(u, input_shape, self.lam_min, self.lam_max)
        return torch.where(mask.to(x1.device), x2, x1), area.to(x1.device)


# ---------------------------------------------------------------------------------------------
# copy-paste: BCP and Switch's multiscale patches
# ---------------------------------------------------------------------------------------------


@dataclass
class CopyPaste:
    """The two mixed batches of a bidirectional copy-paste and what the loss needs.

    ``mask`` ``(B, D)`` is M: 1 on the background, 0 on the patches (every channel).
    ``x_in = u⊙M + l⊙(1 - M)``: unlabeled background, labeled patches.
    ``x_out = l⊙M + u⊙(1 - M)``: labeled background, unlabeled patches.
    ``area`` ``(B,)`` is the fraction of positions in the patches (where M = 0).
    """

    x_in: Tensor
    x_out: Tensor
    mask: Tensor
    area: Tensor


def paste(background: Tensor, patch: Tensor, mask: Tensor) -> Tensor:
    """``background⊙M + patch⊙(1 - M)`` for a 0/1 mask ``M`` of the rows' shape."""
    m = mask.to(device=background.device, dtype=background.dtype)
    return background * m + patch * (1 - m)


def patch_mask(u: Tensor, input_shape: tuple[int, ...],
               sides: list[float]) -> tuple[Tensor, Tensor]:
    """Ones with one zero rectangle per entry of ``sides`` at a random position.

    Patch ``i`` is ``round(sides[i]·H)`` by ``round(sides[i]·W)`` (a square on a square
    image; a segment of ``round(sides[i]·L)`` on 1-D rows and other layouts with H = 1); its corner is uniform over the
    positions where it fits: ``floor(u[:, i, 0]·(H - bh + 1))`` (clamped), likewise for x with
    ``u[:, i, 1]``. Patches may overlap. ``u`` ``(B, len(sides), 2)`` are uniforms.
    Returns ``M`` ``(B, D)`` float32 and ``area`` ``(B,)``, the fraction of zeros.
    """
    c, h, w = mixer_grid(input_shape)
    one_d = h == 1
    region = torch.zeros(len(u), h, w, dtype=torch.bool, device=u.device)
    for i, side in enumerate(sides):
        bh = 1 if one_d else min(h, round(side * h))
        bw = min(w, round(side * w))
        y0 = (u[:, i, 0] * (h - bh + 1)).floor().clamp(max=h - bh)
        x0 = (u[:, i, 1] * (w - bw + 1)).floor().clamp(max=w - bw)
        region |= rect_mask(h, w, bh, bw, y0, x0)
    mask = (~spread_channels(region, c)).float()
    return mask, region.flatten(1).float().mean(1)


def region_weights(mask: Tensor, from_labeled: bool, u_weight: float = 0.5) -> Tensor:
    """BCP's per-element loss weights for one mixed batch: 1 where the target is ground truth,
    ``u_weight`` where it is a pseudo-label.

    ``from_labeled`` tells where the background (M = 1) of the mixed batch came from: False
    for ``x_in`` (unlabeled background, labeled patch), True for ``x_out``.
    """
    check_param("region_weights", "u_weight", u_weight, low=0)
    m = mask.float()
    background, patch = (1.0, u_weight) if from_labeled else (u_weight, 1.0)
    return background * m + patch * (1 - m)


def mixed_label_weights(area: Tensor, from_labeled: bool,
                        u_weight: float = 0.5) -> tuple[Tensor, Tensor]:
    """Per-row weights ``(w_labeled, w_unlabeled)`` of a mixed row's two class targets.

    Each is the area of the part that came from that batch times its :func:`region_weights`
    weight: for ``x_in`` (``from_labeled=False``) ``(area, u_weight·(1 - area))``; for
    ``x_out`` ``(1 - area, u_weight·area)``. A classification loss
    ``w_l·CE(y_labeled) + w_u·CE(pseudo_label)`` then equals the mean over positions of the
    region-weighted loss when every position of a part carries that part's class. The two
    weights do not sum to 1 unless ``u_weight = 1``.
    """
    check_param("mixed_label_weights", "u_weight", u_weight, low=0)
    if from_labeled:
        return 1 - area, u_weight * area
    return area, u_weight * (1 - area)


class _CopyPasteMixer:
    """Shared by BCP and MSS: draw a patch mask per row, mix in both directions."""

    sides: list[float]

    def masks(self, n: int, input_shape: tuple[int, ...],
              g: torch.Generator) -> tuple[Tensor, Tensor]:
        """``n`` masks (see :func:`patch_mask`) drawn from ``g``."""
        u = torch.rand(n, len(self.sides), 2, generator=g, device=g.device)
        return patch_mask(u, input_shape, self.sides)

    def mix(self, labeled: Tensor, unlabeled: Tensor, input_shape: tuple[int, ...],
            g: torch.Generator) -> CopyPaste:
        """Mix labeled rows with unlabeled rows (same shape) both ways, one mask per row."""
        check_rows(labeled, input_shape)
        if labeled.shape != unlabeled.shape:
            raise MentorError(f"copy-paste: labeled rows {tuple(labeled.shape)} and unlabeled "
                              f"rows {tuple(unlabeled.shape)} differ in shape")
        mask, area = self.masks(len(labeled), input_shape, g)
        mask = mask.to(device=labeled.device, dtype=labeled.dtype)
        return CopyPaste(paste(unlabeled, labeled, mask), paste(labeled, unlabeled, mask),
                         mask, area.to(labeled.device))


@MIXERS.register("bidirectional_copy_paste", description="one zero rectangle of ratio·H × "
                 "ratio·W: labeled patch in unlabeled image and the reverse",
                 paper="Bai et al. 2023, Bidirectional Copy-Paste for Semi-Supervised Medical "
                 "Image Segmentation (CVPR)")
class BidirectionalCopyPaste(_CopyPasteMixer):
    """BCP (Bai et al. 2023): M is ones with one zero rectangle of ``round(ratio·H)`` by
    ``round(ratio·W)`` (a segment of ``round(ratio·L)`` on 1-D rows) per row.

    ``mix(labeled, unlabeled, input_shape, g)`` returns a :class:`CopyPaste`. The loss weights come from
    :func:`region_weights` (dense targets) or :func:`mixed_label_weights` (one class per row).
    BCP's code draws one rectangle per batch, truncates the size (``int``) and pairs
    different halves of the batch in the two directions; here every row has its own
    rectangle, and other pairings are :func:`paste` calls with the same mask.
    """

    def __init__(self, ratio: float = 2 / 3):
        check_param("bidirectional_copy_paste", "ratio", ratio, low=0, high=1)
        self.ratio = float(ratio)
        self.sides = [self.ratio]


def _count(component: str, name: str, value) -> int:
    check_param(component, name, value, low=0)
    if value != int(value):
        raise ParameterError(f"{component}.{name} must be a whole number, got {value!r}")
    return int(value)


@MIXERS.register("multiscale_patches", description="bidirectional copy-paste with several "
                 "coarse and fine square patches (Switch MSS)",
                 paper="Switch (multiscale switch)")
class MultiScalePatches(_CopyPasteMixer):
    """Switch's multiscale switch (METHODS.md §35): BCP with ``num_coarse`` patches of side
    ``coarse`` and ``num_fine`` patches of side ``fine`` (fractions of H and W; squares on
    square images, segments on 1-D rows), at independent random positions, possibly
    overlapping. Same outputs as :class:`BidirectionalCopyPaste`."""

    def __init__(self, num_coarse: int = 2, coarse: float = 0.5, num_fine: int = 2,
                 fine: float = 0.125):
        name = "multiscale_patches"
        self.num_coarse = _count(name, "num_coarse", num_coarse)
        self.num_fine = _count(name, "num_fine", num_fine)
        check_param(name, "coarse", coarse, low=0, high=1)
        check_param(name, "fine", fine, low=0, high=1)
        self.coarse, self.fine = float(coarse), float(fine)
        self.sides = [self.coarse] * self.num_coarse + [self.fine] * self.num_fine


# ---------------------------------------------------------------------------------------------
# frequency-domain amplitude switch
# ---------------------------------------------------------------------------------------------


def _low_band(n: int, size: float, device) -> Tensor:
    """Bool ``(n,)``: integer frequencies ``|k| <= floor(s/2)``, ``s = max(1, round(size·n))``."""
    s = max(1, round(size * n))
    k = torch.fft.fftfreq(n, d=1.0 / n, device=device)
    return k.abs() <= s // 2


def amplitude_switch(x_a: Tensor, x_b: Tensor, input_shape: tuple[int, ...],
                     size: float) -> tuple[Tensor, Tensor]:
    """Swap the low-frequency Fourier amplitude of two batches (Switch FDS, METHODS.md §35).

    Each channel of each row is Fourier transformed (2-D for images, along L for 1-D rows).
    Inside the low band, ``a`` takes ``b``'s amplitude and ``b`` takes ``a``'s; both keep
    their own phase everywhere; the inverse transform's real part is returned. Returns
    ``(a with b's low-frequency amplitude, b with a's)``, rows of the input shape.

    The band is the centred square of the ``fftshift``-ed spectrum: along an axis of ``n``
    points, ``s = max(1, round(size·n))`` and the band holds the integer frequencies
    ``|k| <= floor(s/2)``, a side of ``s`` when ``s`` is odd and ``s + 1`` when it is even, so
    the band is symmetric about frequency 0 and the output stays real. The default size on
    an 8×8 image is the zero frequency alone (the mean); ``size = 1`` is the whole spectrum.
    """
    check_param("frequency_amplitude_switch", "size", size, low=0, high=1, low_open=True)
    check_rows(x_a, input_shape)
    if x_a.shape != x_b.shape:
        raise MentorError(f"amplitude switch: rows {tuple(x_a.shape)} and {tuple(x_b.shape)} "
                          "differ in shape")
    c, h, w = mixer_grid(input_shape)
    maps_a, maps_b = x_a.reshape(len(x_a), c, h, w), x_b.reshape(len(x_b), c, h, w)
    dims = (-1,) if len(tuple(input_shape)) == 1 else (-2, -1)
    fa, fb = torch.fft.fftn(maps_a, dim=dims), torch.fft.fftn(maps_b, dim=dims)
    band = _low_band(w, size, x_a.device).view(1, w)
    if len(dims) == 2:
        band = _low_band(h, size, x_a.device).view(h, 1) & band
    amp_a, amp_b = fa.abs(), fb.abs()
    new_a = torch.polar(torch.where(band, amp_b, amp_a), fa.angle())
    new_b = torch.polar(torch.where(band, amp_a, amp_b), fb.angle())
    out_a = torch.fft.ifftn(new_a, dim=dims).real.reshape(x_a.shape)
    out_b = torch.fft.ifftn(new_b, dim=dims).real.reshape(x_b.shape)
    return out_a, out_b


@MIXERS.register("frequency_amplitude_switch", description="swap the low-frequency Fourier "
                 "amplitude of two batches, keep phases (Switch FDS)",
                 paper="Switch (frequency-domain switch)")
class FrequencyAmplitudeSwitch:
    """Switch's frequency-domain switch (METHODS.md §35): ``switch(x_a, x_b, input_shape)``
    is :func:`amplitude_switch` with this ``size`` (a fraction of each axis, default
    0.0175 as in the paper). No randomness."""

    def __init__(self, size: float = 0.0175):
        check_param("frequency_amplitude_switch", "size", size, low=0, high=1, low_open=True)
        self.size = float(size)

    def switch(self, x_a: Tensor, x_b: Tensor,
               input_shape: tuple[int, ...]) -> tuple[Tensor, Tensor]:
        return amplitude_switch(x_a, x_b, input_shape, self.size)
