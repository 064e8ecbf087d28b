"""Image views: RandAugment as batched tensor ops, for FixMatch-style strong views.

``randaugment`` is registered in :data:`mentor.registry.AUGMENTS` like the ops of
:mod:`mentor.data.augment`: a pure function of its uniform draws ``u``, so a view is fixed by
``(seed, step, sample)`` and does not depend on the batch size or the other rows.

RandAugment (Cubuk et al. 2020, "RandAugment: Practical automated data augmentation with a
reduced search space", CVPR Workshops) applies ``n`` ops drawn uniformly from a fixed set,
each at one magnitude. FixMatch (Sohn et al. 2020, NeurIPS) uses it as the strong view,
followed by Cutout, with the op set of its code (google-research/fixmatch,
``libml/augment.py`` ``RANDOM_POLICY_OPS``; ranges in its paper's Table 12 and
``third_party/auto_augment/augmentations.py``): identity, autocontrast, equalize, rotate
(±30°), solarize (threshold 1 → 0), color, contrast, brightness, sharpness (factor 0.1 →
1.9), shear_x, shear_y (±0.3), translate_x, translate_y (±0.3 of the side), posterize (8 → 4
bits). Its "RA" variant draws each op's magnitude at random and applies each drawn op with
probability 0.5 (``AugmentPoolRAM``; kekmodel/FixMatch-pytorch ``RandAugmentMC`` likewise).

Here ``magnitude`` is a fraction of each op's largest strength: a number in [0, 1] (the
paper's fixed M, as M/10) or ``'random'`` (default: uniform in [0, 1] per op and row, the
FixMatch variant). Symmetric ops draw a direction too, so magnitude 0 is the identity for
every op: the enhance factor is ``1 ± 0.9·m`` (same [0.1, 1.9] span as AutoAugment's
``0.1 + 1.8·m``, and, with a random magnitude, the same uniform factor), rotate ``±30·m``°,
shear ``±0.3·m``, translate ``±0.3·m`` of the side (whole pixels), solarize inverts values
above ``1 − m``, posterize keeps ``8 − ⌊4.999·m⌋`` bits (FixMatch's Table 12 range [4, 8];
its code's ``4 − level`` bits are not reproduced).

Value range: mentor's image rows are often standardized, not in [0, 1]. Photometric ops
therefore act on each image mapped to [0, 1] by its own minimum and maximum (over every
channel), are clipped to [0, 1] there, and are mapped back; an image's darkest value plays
black and its brightest white. Consequences: autocontrast leaves one-channel images as they
are (they already span their own range), and a constant image is unchanged. Equalize is the
continuous histogram equalization (each value goes to the fraction of the channel's values
at or below it, the CDF formula), not PIL's 256-bin table, whose step is 0 -- no change --
for images under 256 pixels. Geometric ops sample bilinearly (``affine_grid`` /
``grid_sample``, about the image centre, in pixel units so non-square images keep their
aspect) with zero fill: the feature mean of standardized rows, where PIL fills gray or black.

Weak view: FixMatch's weak view is a random horizontal flip and a translation by up to
12.5 % of the side (4 of 32 pixels, by reflect padding and a random crop:
``Primitives.ms(4)``). The existing ops cover it: ``[flip, shift(pixels=round(0.125·side))]``
(``shift`` moves by whole pixels with zero fill instead of reflection), so no new op is
added. FixMatch's strong view is ``[flip, shift, randaugment, cutout(size=0.5)]``.
"""

from __future__ import annotations

import math
import numbers
from typing import Callable, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import MentorError, check_param
from ..registry import AUGMENTS
from .layout import row_grid

MAX_OPS = 4  # largest n (FixMatch's grid: 1 to 4 ops); fixes the draws per row
SLOT_DRAWS = 4  # per op: which op, magnitude, direction, applied or not

ENHANCE = 0.9  # enhance factor 1 ± 0.9·m
DEGREES = 30.0
SHEAR = 0.3
TRANSLATE = 0.3  # fraction of the side
POSTERIZE_BITS = 4  # bits removed at full magnitude


# ------------------------------------------------------------------ photometric ops
# Each takes images ``v`` (k, C, H, W) in [0, 1] and one parameter per image (k,).

def _per_image(p: Tensor, v: Tensor) -> Tensor:
    """A per-image parameter (k,) shaped to broadcast over (k, C, H, W)."""
    return p.to(v.device, v.dtype).view(-1, 1, 1, 1)


def blend(degenerate: Tensor, v: Tensor, factor: Tensor) -> Tensor:
    """PIL's ``Image.blend(degenerate, v, factor)``: ``degenerate + factor·(v − degenerate)``
    (factor 1 is ``v``, 0 the degenerate image, above 1 extrapolates)."""
    return degenerate + _per_image(factor, v) * (v - degenerate)


def gray(v: Tensor) -> Tensor:
    """Luma (k, 1, H, W): ITU-R 601 weights (PIL's ``convert('L')``) for 3 channels, the
    channel mean otherwise."""
    if v.shape[1] == 3:
        w = torch.tensor([0.299, 0.587, 0.114], dtype=v.dtype, device=v.device)
        return (v * w.view(1, 3, 1, 1)).sum(1, keepdim=True)
    return v.mean(1, keepdim=True)


def brightness(v: Tensor, factor: Tensor) -> Tensor:
    """Blend with black (PIL ``ImageEnhance.Brightness``)."""
    return blend(torch.zeros_like(v), v, factor)


def color(v: Tensor, factor: Tensor) -> Tensor:
    """Saturation: blend with the gray image (PIL ``ImageEnhance.Color``); identity unless
    the image has 3 channels."""
    return blend(gray(v), v, factor) if v.shape[1] == 3 else v


def contrast(v: Tensor, factor: Tensor) -> Tensor:
    """Blend with the mean gray level of the image (PIL ``ImageEnhance.Contrast``)."""
    return blend(gray(v).mean((1, 2, 3), keepdim=True).expand_as(v), v, factor)


def smooth(v: Tensor) -> Tensor:
    """PIL's ``ImageFilter.SMOOTH`` (3×3 kernel, 5 in the centre, 1 around, /13) on interior
    pixels; border pixels keep their value, as in PIL's sharpness enhancer."""
    h, w = v.shape[-2:]
    if h < 3 or w < 3:
        return v
    total = 4 * v[..., 1:-1, 1:-1]
    for dy in (0, 1, 2):  # a fixed order of sums: a row's result never depends on the batch
        for dx in (0, 1, 2):
            total = total + v[..., dy:h - 2 + dy, dx:w - 2 + dx]
    out = v.clone()
    out[..., 1:-1, 1:-1] = total / 13
    return out


def sharpness(v: Tensor, factor: Tensor) -> Tensor:
    """Blend with the smoothed image (PIL ``ImageEnhance.Sharpness``): above 1 sharpens."""
    return blend(smooth(v), v, factor)


def solarize(v: Tensor, threshold: Tensor) -> Tensor:
    """Invert (``1 − v``) the values above ``threshold`` (PIL ``ImageOps.solarize``)."""
    return torch.where(v > _per_image(threshold, v), 1 - v, v)


def posterize(v: Tensor, bits: Tensor) -> Tensor:
    """Keep the top ``bits`` of the 8-bit value ``round(255·v)`` (PIL ``ImageOps.posterize``);
    8 bits leave ``v`` as it is (not rounded to 8 bits)."""
    step = 2.0 ** (8 - _per_image(bits, v))
    kept = torch.floor(torch.round(v * 255) / step) * step / 255
    return torch.where(step > 1, kept, v)


def _per_channel(v: Tensor) -> Tensor:
    """(k, C, H, W) -> (k·C, H·W): one row per image channel."""
    return v.reshape(v.shape[0] * v.shape[1], -1)


def autocontrast(v: Tensor, level: Tensor | None = None) -> Tensor:
    """Stretch each channel to [0, 1] (PIL ``ImageOps.autocontrast``, no cutoff); a constant
    channel is left as it is."""
    flat = _per_channel(v)
    lo, hi = flat.amin(1, keepdim=True), flat.amax(1, keepdim=True)
    span = hi - lo
    out = torch.where(span > 0, (flat - lo) / torch.where(span > 0, span, 1), flat)
    return out.reshape(v.shape)


def _at_or_below(ordered: Tensor) -> Tensor:
    """For rows sorted ascending, how many of the row's values are at or below each value:
    the 1-based position of the last of its ties."""
    n = ordered.shape[1]
    position = torch.arange(1, n + 1, device=ordered.device).expand(ordered.shape)
    last = torch.ones_like(ordered, dtype=torch.bool)
    last[:, :-1] = ordered[:, 1:] != ordered[:, :-1]
    return torch.where(last, position, n).flip(1).cummin(1).values.flip(1)


def equalize(v: Tensor, level: Tensor | None = None) -> Tensor:
    """Histogram equalization per channel, continuous: ``(cdf(v) − cdf_min) / (N − cdf_min)``
    with ``cdf(v)`` the number of the channel's N values at or below ``v`` (Gonzalez &
    Woods' formula); a constant channel is left as it is."""
    flat = _per_channel(v)
    ordered, order = flat.sort(1)
    counts = _at_or_below(ordered)
    cdf = torch.empty_like(order).scatter_(1, order, counts)
    lowest = counts[:, :1]
    rest = flat.shape[1] - lowest
    out = (cdf - lowest).to(v.dtype) / rest.clamp(min=1).to(v.dtype)
    return torch.where(rest > 0, out, flat).reshape(v.shape)


# ------------------------------------------------------------------ geometric ops
# Each takes images ``maps`` (k, C, H, W) of any range and one parameter per image (k,).

def warp(maps: Tensor, a: Tensor, t: Tensor) -> Tensor:
    """Each output pixel ``p`` takes the input at ``a·p + t`` (pixel units about the image
    centre; ``a`` (k, 2, 2) acts on (x, y) with y downwards, ``t`` (k, 2) in pixels):
    bilinear, zero fill outside the image; half precision is sampled in float32."""
    k, c, h, w = maps.shape
    work = torch.promote_types(maps.dtype, torch.float32)
    a, t = a.to(maps.device, work), t.to(maps.device, work)
    theta = torch.stack([torch.stack([a[:, 0, 0], a[:, 0, 1] * h / w, 2 * t[:, 0] / w], 1),
                         torch.stack([a[:, 1, 0] * w / h, a[:, 1, 1], 2 * t[:, 1] / h], 1)], 1)
    grid = F.affine_grid(theta, [k, c, h, w], align_corners=False)
    out = F.grid_sample(maps.to(work), grid, mode="bilinear", padding_mode="zeros",
                        align_corners=False)
    return out.to(maps.dtype)


def _matrices(a00: Tensor, a01: Tensor, a10: Tensor, a11: Tensor) -> Tensor:
    return torch.stack([torch.stack([a00, a01], 1), torch.stack([a10, a11], 1)], 1)


def rotate(maps: Tensor, degrees: Tensor) -> Tensor:
    """Rotate counter-clockwise as displayed (rows downwards) by ``degrees`` about the
    centre: +90° on a square image is ``torch.rot90(maps, 1, (-2, -1))``."""
    rad = degrees.to(maps.dtype) * (math.pi / 180)
    cos, sin = torch.cos(rad), torch.sin(rad)
    return warp(maps, _matrices(cos, -sin, sin, cos), torch.zeros(len(maps), 2))


def shear_x(maps: Tensor, amount: Tensor) -> Tensor:
    """Output ``(x, y)`` takes the input at ``(x + amount·y, y)`` (PIL's ``AFFINE`` with
    ``(1, amount, 0, 0, 1, 0)``, about the centre)."""
    one, zero = torch.ones_like(amount), torch.zeros_like(amount)
    return warp(maps, _matrices(one, amount, zero, one), torch.zeros(len(maps), 2))


def shear_y(maps: Tensor, amount: Tensor) -> Tensor:
    """Output ``(x, y)`` takes the input at ``(x, y + amount·x)``."""
    one, zero = torch.ones_like(amount), torch.zeros_like(amount)
    return warp(maps, _matrices(one, zero, amount, one), torch.zeros(len(maps), 2))


def _translate(maps: Tensor, pixels: Tensor, axis: int) -> Tensor:
    eye = torch.eye(2).expand(len(maps), 2, 2)
    t = torch.zeros(len(maps), 2, dtype=pixels.dtype, device=pixels.device)
    t[:, axis] = pixels
    return warp(maps, eye, t)


def translate_x(maps: Tensor, pixels: Tensor) -> Tensor:
    """Output ``(x, y)`` takes the input at ``(x + pixels, y)``."""
    return _translate(maps, pixels, 0)


def translate_y(maps: Tensor, pixels: Tensor) -> Tensor:
    """Output ``(x, y)`` takes the input at ``(x, y + pixels)``."""
    return _translate(maps, pixels, 1)


# ------------------------------------------------------------------ the op set

class RandOp(NamedTuple):
    """One RandAugment op: ``apply(maps, level)`` with ``level`` (k,) the signed magnitude
    in [-1, 1] (signed ops) or the magnitude in [0, 1]; ``tone`` ops see images in [0, 1]."""
    apply: Callable[[Tensor, Tensor], Tensor]
    tone: bool
    signed: bool


def _factor(op: Callable[[Tensor, Tensor], Tensor]) -> Callable[[Tensor, Tensor], Tensor]:
    return lambda v, level: op(v, 1 + ENHANCE * level)


def _side(maps: Tensor, axis: int) -> int:
    return maps.shape[-1] if axis == 0 else maps.shape[-2]


def _shift(op: Callable[[Tensor, Tensor], Tensor], axis: int):
    return lambda m, level: op(m, torch.round(TRANSLATE * level * _side(m, axis)))


# FixMatch's RANDOM_POLICY_OPS order (google-research/fixmatch libml/augment.py)
OPS: dict[str, RandOp] = {
    "identity": RandOp(lambda m, level: m, False, False),
    "autocontrast": RandOp(autocontrast, True, False),
    "equalize": RandOp(equalize, True, False),
    "rotate": RandOp(lambda m, level: rotate(m, DEGREES * level), False, True),
    "solarize": RandOp(lambda v, level: solarize(v, 1 - level), True, False),
    "color": RandOp(_factor(color), True, True),
    "contrast": RandOp(_factor(contrast), True, True),
    "brightness": RandOp(_factor(brightness), True, True),
    "sharpness": RandOp(_factor(sharpness), True, True),
    "shear_x": RandOp(lambda m, level: shear_x(m, SHEAR * level), False, True),
    "translate_x": RandOp(_shift(translate_x, 0), False, True),
    "translate_y": RandOp(_shift(translate_y, 1), False, True),
    "posterize": RandOp(lambda v, level: posterize(
        v, 8 - torch.floor((POSTERIZE_BITS + 0.999) * level)), True, False),
    "shear_y": RandOp(lambda m, level: shear_y(m, SHEAR * level), False, True),
}


def in_unit_range(op: Callable[[Tensor, Tensor], Tensor], maps: Tensor, level: Tensor) -> Tensor:
    """Apply a photometric op to each image mapped to [0, 1] by its own min and max, clip to
    [0, 1], and map back (a constant image maps to 0 and back)."""
    lo = maps.amin((1, 2, 3), keepdim=True)
    span = maps.amax((1, 2, 3), keepdim=True) - lo
    span = torch.where(span > 0, span, torch.ones_like(span))
    return op((maps - lo) / span, level).clamp(0, 1) * span + lo


def apply_op(name: str, maps: Tensor, level: Tensor) -> Tensor:
    """Op ``name`` on images ``maps`` (k, C, H, W) at signed magnitudes ``level`` (k,)."""
    op = OPS[name]
    level = level.to(maps.device, maps.dtype)
    level = level if op.signed else level.abs()
    return in_unit_range(op.apply, maps, level) if op.tone else op.apply(maps, level)


# ------------------------------------------------------------------ the augmentation

def _check_params(n, magnitude, p, ops) -> list[str]:
    """The op names to draw from, or a one-sentence MentorError naming the parameter."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or not 0 <= n <= MAX_OPS:
        raise MentorError(f"randaugment.n must be an integer in [0, {MAX_OPS}] (ops per "
                          f"image), got {n!r}")
    if isinstance(magnitude, str):
        if magnitude != "random":
            raise MentorError(f"randaugment.magnitude must be a number in [0, 1] or 'random', "
                              f"got {magnitude!r}")
    else:
        check_param("randaugment", "magnitude", magnitude, low=0, high=1)
    check_param("randaugment", "p", p, low=0, high=1)
    if ops is None:
        return list(OPS)
    known = ", ".join(OPS)
    if isinstance(ops, (str, bytes)) or not isinstance(ops, Sequence) or not ops:
        raise MentorError(f"randaugment.ops must be a non-empty list of op names ({known}), "
                          f"got {ops!r}")
    unknown = [o for o in ops if o not in OPS]
    if unknown:
        raise MentorError(f"randaugment.ops has {unknown[0]!r}, which is not a RandAugment "
                          f"op; expected names from {known}")
    return list(ops)


def _image_maps(x: Tensor, input_shape: Sequence[int]) -> Tensor:
    shape = tuple(int(s) for s in input_shape)
    c, h, w = row_grid(shape)
    if len(shape) == 1:
        raise MentorError(f"randaugment: input shape {shape} is a 1-D row; expected an image "
                          "layout (H, W) or (C, H, W)")
    return x.reshape(len(x), c, h, w)


def _levels(u: Tensor, magnitude) -> Tensor:
    """Signed magnitudes (B,) of one slot: magnitude (drawn from ``u[:, 1]`` if 'random')
    with the direction drawn from ``u[:, 2]``."""
    m = u[:, 1] if magnitude == "random" else torch.full_like(u[:, 1], float(magnitude))
    return torch.where(u[:, 2] < 0.5, m, -m)


def _slot(maps: Tensor, u: Tensor, names: list[str], magnitude, p: float) -> Tensor:
    """One RandAugment slot: each row applies (with probability ``p``) the op its draws
    pick. Rows are grouped by op (sorted, stable), each op runs once on its group, and the
    rows go back to their places."""
    k = len(names)
    pick = (u[:, 0] * k).floor().long().clamp(max=k - 1)
    group = torch.where(u[:, 3] < p, pick, k)  # k: not applied
    order = torch.argsort(group, stable=True)
    sizes = torch.bincount(group, minlength=k + 1).tolist()
    parts = zip(maps[order].split(sizes), _levels(u, magnitude)[order].split(sizes))
    done = [apply_op(names[i], part, level) if i < k and len(part) else part
            for i, (part, level) in enumerate(parts)]
    return torch.cat(done)[torch.argsort(order)]


@AUGMENTS.register(
    "randaugment",
    description="RandAugment: n ops per image drawn from 14 photometric and geometric ones "
    "(FixMatch's strong view, before cutout). 'n' ops (0-4, default 2) from 'ops' (default "
    "all: identity, autocontrast, equalize, rotate, solarize, color, contrast, brightness, "
    "sharpness, shear_x, translate_x, translate_y, posterize, shear_y), each applied with "
    "probability 'p' (default 0.5 as FixMatch's code; 1 in the RandAugment paper) at "
    "'magnitude' (fraction of each op's largest strength, or 'random' per op: the default); "
    "photometric ops act on each image mapped to [0, 1] by its own min and max, geometric "
    "ones sample bilinearly with zero fill; images only",
    paper="Cubuk et al. 2020 (RandAugment, CVPR Workshops); FixMatch's strong view (Sohn et "
    "al. 2020, NeurIPS)")
def randaugment(x: Tensor, u: Tensor, input_shape: Sequence[int], *, n: int = 2,
                magnitude: float | str = "random", p: float = 0.5,
                ops: Sequence[str] | None = None) -> Tensor:
    """RandAugment (Cubuk et al. 2020) as in FixMatch (Sohn et al. 2020): slot ``i`` of a
    row uses draws ``u[:, 4i:4i+4]`` (op, magnitude, direction, applied); see the module
    docstring for the ops, their ranges and the value range."""
    names = _check_params(n, magnitude, p, ops)
    maps = _image_maps(x, input_shape)
    u = u.to(x.device, torch.promote_types(x.dtype, torch.float32))  # exact float64 levels
    for i in range(int(n)):
        maps = _slot(maps, u[:, SLOT_DRAWS * i:SLOT_DRAWS * (i + 1)], names, magnitude, p)
    return maps.reshape(x.shape)


randaugment.draws = MAX_OPS * SLOT_DRAWS
