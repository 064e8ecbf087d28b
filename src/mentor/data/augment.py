"""Weak and strong views for semi-supervised learning: augmentations as tensor ops.

Every augmentation is registered in :data:`mentor.registry.AUGMENTS` with the signature
``fn(x, u, input_shape, **params)``: flat rows ``x`` ``(B, D)``, their uniform draws ``u``
``(B, P)`` and the layout of a row (``(L,)`` signals or tabular rows, ``(H, W)`` or
``(C, H, W)`` images). ``fn.draws`` is ``P``: a number, or ``ELEMENTS`` for one draw per
input element (noise, masking). Because all randomness enters through ``u``, an
augmentation is a pure function of its draws: the engine draws them from a generator seeded
with ``(seed, step, role)``, so a resumed run sees the same views as an uninterrupted one,
and a label store can regenerate a view from its seed (:mod:`mentor.labels.views`).

:class:`Augment` chains augmentations; :func:`default_views` gives the weak and strong
pipelines mentor uses when a recipe names none (FixMatch's weak = flip-and-shift, strong =
heavier distortion + Cutout, re-expressed for small inputs; METHODS.md A12).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import MentorError, check_param
from ..registry import AUGMENTS
from .layout import as_maps, paste_box, row_grid

ELEMENTS = -1  # ``draws`` value: one uniform per input element
# what an augmentation reads (``fn.inputs``, default rows): flat numeric rows, named token
# ids (input_ids, attention_mask), or one tensor of token ids whose every position keeps its
# label (a tagging row: the view may rewrite a token, never move one)
ROWS, TOKENS, IDS = "rows", "tokens", "ids"


def reads(fn) -> str:
    """``'tokens'`` for an augmentation of named token ids (:mod:`mentor.data.text_views`),
    ``'ids'`` for a position-keeping one of a token-id tensor (0 pads), else ``'rows'``
    (flat numeric rows)."""
    return getattr(fn, "inputs", ROWS)


def view_inputs(position_views: bool, named_tokens: bool) -> str:
    """What the views of a training's rows must read: ``'ids'`` for a task whose rows keep a
    label per position (:attr:`~mentor.contracts.TaskAdapter.position_views`, tagging),
    ``'tokens'`` for named token ids, else ``'rows'``."""
    return IDS if position_views else TOKENS if named_tokens else ROWS


def draws_for(fn, input_shape: Sequence[int]) -> int:
    """How many uniforms per row augmentation ``fn`` consumes for rows of ``input_shape``."""
    d = int(getattr(fn, "draws", 0))
    return math.prod(input_shape) if d == ELEMENTS else d




@AUGMENTS.register("shift", description="translate by a whole number of pixels (up to "
                   "'pixels' along each axis; along the length for 1-D rows), zero fill",
                   paper="FixMatch weak view (Sohn et al. 2020): random translation")
def shift(x: Tensor, u: Tensor, input_shape: Sequence[int], *, pixels: int = 1) -> Tensor:
    check_param("shift", "pixels", pixels, low=0)
    c, h, w = row_grid(input_shape)
    b = len(x)
    span = 2 * int(pixels) + 1
    dx = (u[:, 0] * span).floor().clamp(max=span - 1).long() - int(pixels)
    dy = ((u[:, 1] * span).floor().clamp(max=span - 1).long() - int(pixels)
          if h > 1 else torch.zeros_like(dx))
    maps = x.reshape(b, c, h, w)
    rows = torch.arange(h, device=x.device).view(1, h) - dy.view(b, 1).to(x.device)  # source
    cols = torch.arange(w, device=x.device).view(1, w) - dx.view(b, 1).to(x.device)
    ok = ((rows >= 0) & (rows < h)).view(b, 1, h, 1) & ((cols >= 0) & (cols < w)).view(b, 1, 1, w)
    r = rows.clamp(0, h - 1).view(b, 1, h, 1).expand(b, c, h, w)
    cc = cols.clamp(0, w - 1).view(b, 1, 1, w).expand(b, c, h, w)
    picked = maps.gather(2, r).gather(3, cc)
    return torch.where(ok, picked, torch.zeros_like(picked)).reshape(b, -1)


shift.draws = 2


@AUGMENTS.register("flip", description="mirror along the last axis with probability p "
                   "(not for data whose meaning changes under a mirror, such as digits)")
def flip(x: Tensor, u: Tensor, input_shape: Sequence[int], *, p: float = 0.5) -> Tensor:
    check_param("flip", "p", p, low=0, high=1)
    c, h, w = row_grid(input_shape)
    maps = x.reshape(len(x), c, h, w)
    on = (u[:, 0] < p).to(x.device).view(-1, 1, 1, 1)
    return torch.where(on, maps.flip(-1), maps).reshape(len(x), -1)


flip.draws = 1


@AUGMENTS.register("noise", description="add Gaussian noise of standard deviation 'std' to "
                   "every element (inputs are standardized, so std is in feature units)")
def noise(x: Tensor, u: Tensor, input_shape: Sequence[int], *, std: float = 0.1) -> Tensor:
    check_param("noise", "std", std, low=0)
    z = math.sqrt(2.0) * torch.erfinv((2 * u - 1).clamp(-1 + 1e-7, 1 - 1e-7))
    return x + std * z.to(x.device, x.dtype)


noise.draws = ELEMENTS


@AUGMENTS.register("mask", description="set each element to 0 (the feature mean) with "
                   "probability p: feature masking for tabular rows and signals")
def mask(x: Tensor, u: Tensor, input_shape: Sequence[int], *, p: float = 0.1) -> Tensor:
    check_param("mask", "p", p, low=0, high=1)
    return torch.where(u.to(x.device) < p, torch.zeros_like(x), x)


mask.draws = ELEMENTS


@AUGMENTS.register("cutout", description="set a square of side 'size' x the image side "
                   "(a segment of that fraction for 1-D rows) to 0 at a uniform position",
                   paper="DeVries & Taylor 2017; FixMatch's strong view ends with Cutout")
def cutout(x: Tensor, u: Tensor, input_shape: Sequence[int], *, size: float = 0.5) -> Tensor:
    check_param("cutout", "size", size, low=0, high=1)
    area = size if len(tuple(input_shape)) == 1 else size * size
    uu = torch.stack([torch.zeros_like(u[:, 0]), u[:, 0], u[:, 1]], 1)
    out, _ = paste_box(x, torch.zeros_like(x), uu, tuple(input_shape), area, area)
    return out


cutout.draws = 2


@AUGMENTS.register("scale", description="multiply each row by a factor drawn uniformly in "
                   "[1 - amount, 1 + amount] (intensity / contrast jitter)")
def scale(x: Tensor, u: Tensor, input_shape: Sequence[int], *, amount: float = 0.1) -> Tensor:
    check_param("scale", "amount", amount, low=0, high=1)
    factor = 1 + amount * (2 * u[:, 0] - 1)
    return x * factor.to(x.device, x.dtype).view(-1, 1)


scale.draws = 1


@AUGMENTS.register("affine", description="random rotation (up to 'degrees'), scale (in "
                   "[1 - scale, 1 + scale]) and translation (up to 'translate' x the half "
                   "side), bilinear, zero fill; 1-D rows: scale and translation only")
def affine(x: Tensor, u: Tensor, input_shape: Sequence[int], *, degrees: float = 10.0,
           scale: float = 0.1, translate: float = 0.15) -> Tensor:
    check_param("affine", "degrees", degrees, low=0, high=180)
    check_param("affine", "scale", scale, low=0, high=1, high_open=True)
    check_param("affine", "translate", translate, low=0, high=1)
    import torch.nn.functional as F
    c, h, w = row_grid(input_shape)
    maps = x.reshape(len(x), c, h, w)
    u = u.to(x.device, x.dtype)
    angle = (2 * u[:, 0] - 1) * math.radians(degrees) if h > 1 else torch.zeros_like(u[:, 0])
    zoom = 1 + scale * (2 * u[:, 1] - 1)
    tx = (2 * u[:, 2] - 1) * translate
    ty = (2 * u[:, 3] - 1) * translate if h > 1 else torch.zeros_like(tx)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom  # output -> input sampling
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(maps.shape), align_corners=False)
    out = F.grid_sample(maps, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.reshape(len(x), -1)


affine.draws = 4


@AUGMENTS.register("crop", description="random resized crop (square in area fraction "
                   "[scale_min, scale_max]), resized back by bilinear sampling; optional "
                   "horizontal flip", paper="FKD / FerKD region crops (Shen & Xing 2022, "
                   "ECCV; Shen 2023, ICCV)")
def crop(x: Tensor, u: Tensor, input_shape: Sequence[int], *, scale_min: float = 0.3,
         scale_max: float = 1.0, flip: bool = False) -> Tensor:
    """Crop a box of area fraction ``a ~ U[scale_min, scale_max]`` at a uniform position and
    resize it to the full size. 1-D signals crop a segment of length fraction ``a``."""
    maps, one_d = as_maps(x, input_shape)
    area = scale_min + (scale_max - scale_min) * u[:, 0]
    side = area if one_d else area.sqrt()
    cx = (2 * u[:, 1] - 1) * (1 - side)
    cy = torch.zeros_like(cx) if one_d else (2 * u[:, 2] - 1) * (1 - side)
    sx = side * torch.where(u[:, 3] < 0.5, -1.0, 1.0) if flip else side
    sy = torch.ones_like(side) if one_d else side
    theta = torch.zeros(len(x), 2, 3, dtype=maps.dtype, device=maps.device)
    theta[:, 0, 0], theta[:, 0, 2] = sx.to(maps.dtype), cx.to(maps.dtype)
    theta[:, 1, 1], theta[:, 1, 2] = sy.to(maps.dtype), cy.to(maps.dtype)
    grid = F.affine_grid(theta, list(maps.shape), align_corners=False)
    out = F.grid_sample(maps, grid, mode="bilinear", padding_mode="border",
                        align_corners=False)
    return out.reshape(len(x), -1)


crop.draws = 4  # uniforms per view: area, x position, y position, flip


@AUGMENTS.register("identity", description="the input unchanged (one view per sample)")
def identity(x: Tensor, u: Tensor, input_shape: Sequence[int]) -> Tensor:
    return x


identity.draws = 0


class Augment:
    """A chain of registered augmentations, ``[(name, params), ...]``, for rows of
    ``input_shape``. ``augment(x, generator)`` draws the uniforms of all ops at once, one row
    of draws per input row (so a row's view does not depend on the batch size), and applies
    the ops in order."""

    def __init__(self, ops: Sequence[tuple[str, dict[str, Any]]], input_shape: Sequence[int],
                 where: str = "augment"):
        self.input_shape = tuple(int(s) for s in input_shape)
        self.ops = []
        kinds = {reads(AUGMENTS.get(name)) for name, _ in ops}
        if len(kinds) > 1:
            raise MentorError(f"{where}: {', '.join(n for n, _ in ops)} mixes augmentations of "
                              "token ids and of numeric rows; expected one kind in a view")
        self.reads = kinds.pop() if kinds else ROWS
        for i, (name, params) in enumerate(ops):
            fn = AUGMENTS.get(name)
            params = dict(params or {})
            n = draws_for(fn, self.input_shape)
            try:  # parameters and layout are checked once, before any training
                fn(self._example(), torch.full((1, max(n, 1)), 0.5), self.input_shape,
                   **params)
            except MentorError as e:
                raise MentorError(f"{where}[{i}]: {e}") from None
            except (TypeError, ValueError, OverflowError, RuntimeError) as e:
                raise MentorError(f"{where}[{i}]: augmentation {name!r} rejects parameters "
                                  f"{params} ({e})") from None
            self.ops.append((name, fn, params, n))

    def _example(self):
        """One zero input of this layout: a flat row, or token ids with their mask."""
        width = math.prod(self.input_shape)
        if self.reads == TOKENS:
            return {"input_ids": torch.zeros(1, width, dtype=torch.long),
                    "attention_mask": torch.ones(1, width, dtype=torch.long)}
        if self.reads == IDS:
            return torch.ones(1, width, dtype=torch.long)
        return torch.zeros(1, width)

    def __call__(self, x, generator: torch.Generator,
                 positions: Tensor | None = None):
        """``positions``: the rows' places in a larger batch whose draws ``generator``
        makes (several processes each augment their share of one global batch). ``x``: flat
        rows, or named token tensors for token augmentations."""
        widths = [max(n, 1) for *_, n in self.ops]
        first = next(iter(x.values())) if type(x) is dict else x
        if positions is None:
            u = torch.rand(len(first), sum(widths), generator=generator)
        else:  # a row's draws depend only on its position: draw up to the last, take ours
            pos = positions.cpu()
            u = torch.rand(int(pos.max()) + 1, sum(widths), generator=generator)[pos]
        draws = u.split(widths, dim=1)
        for (_, fn, params, _), u in zip(self.ops, draws):
            x = fn(x, u.to(first.device), self.input_shape, **params)
        return x

    def __bool__(self) -> bool:
        return bool(self.ops)

    def describe(self) -> str:
        return " + ".join(_describe_op(name, p) for name, _, p, _ in self.ops) or "none"


def _describe_op(name: str, params: dict[str, Any]) -> str:
    if not params:
        return name
    text = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in params.items())
    return f"{name}({text})"


def default_views(input_shape: Sequence[int],
                  inputs: str = ROWS) -> dict[str, list[tuple[str, dict]]]:
    """The weak and strong pipelines used when a recipe names none, for rows that
    augmentations of kind ``inputs`` read (:func:`view_inputs`).

    Images (``(H, W)``, ``(C, H, W)``): weak = shift by up to 1 pixel; strong = shift by up to
    1 pixel, Gaussian noise 0.5, cutout of half the side. Rows and signals (``(L,)``): weak =
    noise 0.1; strong = noise 0.3 and 20 % masking. No flips: a mirrored digit is another
    symbol. Named token ids (``'tokens'``, :mod:`mentor.data.text_views`): weak = 10 % of the
    tokens deleted; strong = 30 % deleted, then a span of at least 60 % kept. Token ids that
    keep a label per position (``'ids'``, tagging): weak = 10 % of the tokens resampled from
    their row, strong = 30 %.
    """
    if inputs == TOKENS:
        return {"weak": [("token_drop", {"p": 0.1})],
                "strong": [("token_drop", {"p": 0.3}), ("token_span", {"min_keep": 0.6})]}
    if inputs == IDS:
        return {"weak": [("token_resample", {"p": 0.1})],
                "strong": [("token_resample", {"p": 0.3})]}
    if len(tuple(input_shape)) >= 2:
        return {"weak": [("shift", {"pixels": 1})],
                "strong": [("shift", {"pixels": 1}), ("noise", {"std": 0.5}),
                           ("cutout", {"size": 0.5})]}
    return {"weak": [("noise", {"std": 0.1})],
            "strong": [("noise", {"std": 0.3}), ("mask", {"p": 0.2})]}


def role_generator(seed: int, step: int, role: int) -> torch.Generator:
    """The generator of one augmentation role at one step: a pure function of its inputs."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step * 97 + role * 7_919 + 11)
                                         % (2**63 - 1))
