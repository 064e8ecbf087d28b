"""Stereo data and the generated testbed TB-STEREO (METHODS.md §0 TB-STEREO, §53 S³; Xu et
al., "Unsupervised Stereo via Multi-Baseline Geometry-Consistent Self-Training", arXiv
2508.10838).

Three rectified cameras stand in a row: the *reference* camera and, to its right, a camera
at baseline ``b`` and one at ``2b``. A scene is a stack of fronto-parallel layers, each
textured with random dots: layer 0 is a background filling the frame, the others are
axis-aligned rectangles -- "poles" (narrow and tall) and "blocks". A layer ``k`` has an
integer disparity ``d_k`` (pixels at baseline ``b``; larger is nearer) and covers the
reference pixels ``x0 <= x < x1``, ``y0 <= y < y1``. In the view at ``s·b`` (``s`` = 0, 1,
2) it covers the columns shifted left by ``s·d_k``, and its texture moves with it: view
``s`` at pixel ``(y, x)`` shows the nearest layer whose reference extent contains
``(y, x + s·d_k)``, with that layer's texel ``(y, x + s·d_k)`` (ties between layers at the
same disparity: the later layer is in front, the same in every view). So a reference pixel
at disparity ``d`` in the ``b`` pair is at ``x - d`` in the ``b`` view and at ``x - 2d``
in the ``2b`` view.

:class:`StereoData` holds, for every scene: the three views ``ref``, ``view_b``, ``view_2b``
``(N, 1, H, W)`` in ``[0, 1]`` (each with its own sensor noise), the reference view's true
disparity ``disparity`` ``(N, H, W)`` at baseline ``b``, and occlusion masks
``occluded_b`` / ``occluded_2b`` ``(N, H, W)``: the reference pixels *not visible* in the
other view of the pair -- hidden there by a nearer layer, or outside its frame
(``x - s·d < 0``). ``layers`` ``(N, K, 5)`` lists each scene's layers as ``(x0, x1, y0,
y1, d)`` (row 0 the background; an unused row is empty, ``x0 = x1``). Splits ``train``,
``val``, ``test`` are scene ids. The regime is unsupervised stereo: a learner trains on the
training scenes' *views only*; the disparities are read for model selection (``val``) and
the final score (``test``).

:func:`tb_stereo` generates the testbed, deterministic for a seed (defaults: 400 scenes of
16 × 64 pixels, disparities 0..8 at baseline ``b``; the scenes are nearly scan-line
stereo, as the catalogue's TB-STEREO, with a few rows of vertical context): the
background's disparity is drawn uniformly in ``0..2``; then ``2..5`` objects, each a pole
with probability ``pole_fraction`` (0.7; width 1..4, height ``H/2 .. H``) or else a block
(width 6..min(20, ``W/2``), height 6..max(6, ``3H/4``)), at a uniformly drawn position
inside the frame and a disparity drawn uniformly in ``d_bg + 2 .. max_disparity``. A pole narrower than its disparity step over the
background hides, in the ``b`` view, a strip that the ``2b`` view sees (the strip the
``2b`` view loses lies further left): the visibility asymmetry S³ relies on. Textures: every
texel uniform in ``[0, 1]``, smoothed along the rows by ``[1, 2, 1] / 4``, then mapped to
``0.5 + contrast·(t - 0.5) + offset`` with a per-layer contrast in ``[0.6, 1]`` and offset
in ``[-0.1, 0.1]``; sensor noise: Gaussian, std ``noise`` (0.02) per view, clipped to
``[0, 1]``.

Bad arguments and inconsistent tensors raise :class:`~mentor.errors.MentorError` (or its
:class:`~mentor.errors.DataError`): one sentence naming the field, the value and what is
expected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..data.splits import check_split_ids
from ..errors import DataError, MentorError

SPLITS = ("train", "val", "test")
VIEWS = ("ref", "view_b", "view_2b")
MASKS = ("occluded_b", "occluded_2b")


@dataclass(frozen=True, eq=False)
class StereoData:
    """Rendered scenes of three views (module docstring). ``baselines``: the camera
    distances of ``view_b`` and ``view_2b`` from the reference, in units of ``b``;
    ``max_disparity``: the largest disparity at baseline ``b``."""

    ref: Tensor
    view_b: Tensor
    view_2b: Tensor
    disparity: Tensor
    occluded_b: Tensor
    occluded_2b: Tensor
    layers: Tensor
    train: Tensor
    val: Tensor
    test: Tensor
    max_disparity: int = 8
    baselines: tuple[float, float] = (1.0, 2.0)
    name: str = "stereo data"

    def __post_init__(self):
        ref = self.ref
        if not torch.is_tensor(ref) or ref.dim() != 4 or ref.shape[1] != 1 or \
                not ref.is_floating_point():
            raise DataError(f"ref has shape {tuple(getattr(ref, 'shape', ()))}; expected "
                            "(scenes, 1, height, width) grey values")
        n, _, h, w = ref.shape
        for name in VIEWS[1:]:
            v = getattr(self, name)
            if not torch.is_tensor(v) or tuple(v.shape) != tuple(ref.shape):
                raise DataError(f"{name} has shape {tuple(getattr(v, 'shape', ()))}; "
                                f"expected {tuple(ref.shape)} like ref")
        d = self.disparity
        if not torch.is_tensor(d) or tuple(d.shape) != (n, h, w):
            raise DataError(f"disparity has shape {tuple(getattr(d, 'shape', ()))}; "
                            f"expected {(n, h, w)}: one value per reference pixel")
        for name in MASKS:
            m = getattr(self, name)
            if not torch.is_tensor(m) or m.dtype != torch.bool or tuple(m.shape) != (n, h, w):
                raise DataError(f"{name} has shape {tuple(getattr(m, 'shape', ()))} and "
                                f"dtype {getattr(m, 'dtype', None)}; expected a boolean "
                                f"{(n, h, w)}")
        if not torch.is_tensor(self.layers) or self.layers.dim() != 3 or \
                len(self.layers) != n or self.layers.shape[-1] != 5:
            raise DataError(f"layers has shape {tuple(getattr(self.layers, 'shape', ()))}; "
                            f"expected ({n}, layers, 5) rows (x0, x1, y0, y1, d)")
        if isinstance(self.max_disparity, bool) or not isinstance(self.max_disparity, int) \
                or self.max_disparity < 1:
            raise DataError(f"max_disparity must be a positive integer, got "
                            f"{self.max_disparity!r}")
        if n and (float(d.min()) < 0 or float(d.max()) > self.max_disparity):
            bad = float(d.min()) if float(d.min()) < 0 else float(d.max())
            raise DataError(f"disparity holds {bad:g}; expected values in "
                            f"0..{self.max_disparity}")
        b1, b2 = (float(v) for v in self.baselines)
        if not 0 < b1 < b2:
            raise DataError(f"baselines must be two increasing positive distances, got "
                            f"{self.baselines!r}")
        check_split_ids({name: getattr(self, name) for name in SPLITS}, n, "scene", "scenes")

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of a view."""
        return int(self.ref.shape[2]), int(self.ref.shape[3])

    def describe(self) -> str:
        h, w = self.shape
        occ_b = 100 * self.occluded_b.float().mean().item()
        occ_2b = 100 * self.occluded_2b.float().mean().item()
        only_b = 100 * (self.occluded_b & ~self.occluded_2b).float().mean().item()
        return (f"{self.name}: {len(self.ref)} scenes of {h}×{w} grey pixels, three views "
                f"(reference, baseline b, 2b), disparities 0..{self.max_disparity} px at b; "
                f"occluded at b {occ_b:.1f} % of the reference pixels, at 2b {occ_2b:.1f} %, "
                f"occluded at b but visible at 2b {only_b:.1f} %; train {len(self.train)}, "
                f"val {len(self.val)}, test {len(self.test)}")


def _positive_int(name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise MentorError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def render(layers: np.ndarray, textures: np.ndarray, shift: int, height: int,
           width: int) -> tuple[np.ndarray, np.ndarray]:
    """``(image, front)`` of the view at ``shift``·b of one scene: ``layers`` ``(K, 5)``
    rows ``(x0, x1, y0, y1, d)`` (row 0 the background), ``textures`` ``(K, H, T)`` texels
    in reference columns (``T >= width + shift·max d``); ``front`` ``(H, W)`` the layer
    index seen at each pixel (the z-buffer of the module docstring)."""
    ys, xs = np.mgrid[0:height, 0:width]
    depth = np.full((height, width), -1, dtype=np.int64)
    front = np.zeros((height, width), dtype=np.int64)
    for k, (x0, x1, y0, y1, d) in enumerate(layers):
        u = xs + shift * int(d)
        inside = (u >= x0) & (u < x1) & (ys >= y0) & (ys < y1)
        if k == 0:
            inside = np.ones_like(inside)
        nearer = inside & (int(d) >= depth)
        depth[nearer] = int(d)
        front[nearer] = k
    u = xs + shift * layers[front, 4]
    image = textures[front, ys, u]
    return image, front


def tb_stereo(num_scenes: int = 400, *, seed: int = 0, height: int = 16, width: int = 64,
              max_disparity: int = 8, objects: tuple[int, int] = (2, 5),
              pole_fraction: float = 0.7, noise: float = 0.02,
              split: tuple[float, float, float] = (0.6, 0.15, 0.25)) -> StereoData:
    """Generate TB-STEREO (module docstring), deterministic for ``seed``. ``objects``: the
    least and most objects per scene; ``split``: the train / val / test fractions."""
    num_scenes = _positive_int("num_scenes", num_scenes, 3)
    height = _positive_int("height", height, 8)
    width = _positive_int("width", width, 16)
    max_disparity = _positive_int("max_disparity", max_disparity, 4)
    if 2 * max_disparity >= width // 2:
        raise MentorError(f"max_disparity must be below width / 4 = {width / 4:g} so the 2b "
                          f"view keeps most of the frame, got {max_disparity!r}")
    if len(objects) != 2 or not all(isinstance(v, int) and not isinstance(v, bool)
                                    for v in objects) or not 0 <= objects[0] <= objects[1]:
        raise MentorError(f"objects must be two integers (least, most) with 0 <= least <= "
                          f"most, got {objects!r}")
    if not 0.0 <= float(pole_fraction) <= 1.0:
        raise MentorError(f"pole_fraction must be in [0, 1], got {pole_fraction!r}")
    if not 0.0 <= float(noise) < 0.5:
        raise MentorError(f"noise must be in [0, 0.5), got {noise!r}")
    if len(split) != 3 or min(split) < 0 or abs(sum(split) - 1) > 1e-6:
        raise MentorError(f"split must be three fractions summing to 1, got {split!r}")
    rng = np.random.default_rng(seed)
    n, h, w, dmax = num_scenes, height, width, max_disparity
    k_max = 1 + objects[1]
    tex_w = w + 2 * dmax
    views = np.zeros((3, n, h, w), dtype=np.float32)
    disparity = np.zeros((n, h, w), dtype=np.float32)
    occluded = np.zeros((2, n, h, w), dtype=bool)
    layers = np.zeros((n, k_max, 5), dtype=np.int64)
    for i in range(n):
        d_bg = int(rng.integers(0, 3))
        rows = [(0, w, 0, h, d_bg)]
        for _ in range(int(rng.integers(objects[0], objects[1] + 1))):
            if rng.random() < pole_fraction:
                ow, oh = int(rng.integers(1, 5)), int(rng.integers(h // 2, h + 1))
            else:
                ow = int(rng.integers(6, min(20, w // 2) + 1))
                oh = int(rng.integers(6, max(6, 3 * h // 4) + 1))
            x0, y0 = int(rng.integers(0, w - ow + 1)), int(rng.integers(0, h - oh + 1))
            rows.append((x0, x0 + ow, y0, y0 + oh, int(rng.integers(d_bg + 2, dmax + 1))))
        layers[i, :len(rows)] = rows
        lay = np.asarray(rows, dtype=np.int64)
        raw = rng.random((len(rows), h, tex_w + 2))
        smooth = 0.25 * raw[:, :, :-2] + 0.5 * raw[:, :, 1:-1] + 0.25 * raw[:, :, 2:]
        contrast = rng.uniform(0.6, 1.0, size=(len(rows), 1, 1))
        offset = rng.uniform(-0.1, 0.1, size=(len(rows), 1, 1))
        # the smoothed texels have std ~0.18: stretch them so a layer spans most of [0, 1]
        textures = np.clip(0.5 + contrast * 2.0 * (smooth - 0.5) + offset, 0.0, 1.0)
        fronts = []
        for s in range(3):
            image, front = render(lay, textures, s, h, w)
            views[s, i] = image
            fronts.append(front)
        ref_front = fronts[0]
        d_ref = lay[ref_front, 4]
        disparity[i] = d_ref
        ys, xs = np.mgrid[0:h, 0:w]
        for s in (1, 2):
            x_other = xs - s * d_ref
            inside = x_other >= 0
            seen = fronts[s][ys, np.clip(x_other, 0, w - 1)]
            occluded[s - 1, i] = ~inside | (seen != ref_front)
    if noise > 0:
        views = views + rng.normal(0.0, noise, size=views.shape).astype(np.float32)
        views = np.clip(views, 0.0, 1.0)
    perm = rng.permutation(n)
    n_train = max(1, int(round(split[0] * n)))
    n_val = max(1, int(round(split[1] * n)))
    if n_train + n_val >= n:
        raise MentorError(f"split {split!r} leaves no test scene of {n}; expected at least "
                          "one scene in every split")
    train, val, test = perm[:n_train], perm[n_train:n_train + n_val], perm[n_train + n_val:]
    as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    return StereoData(as_t(views[0][:, None]), as_t(views[1][:, None]),
                      as_t(views[2][:, None]), as_t(disparity), as_t(occluded[0]),
                      as_t(occluded[1]), as_t(layers), as_t(np.sort(train)),
                      as_t(np.sort(val)), as_t(np.sort(test)), dmax, (1.0, 2.0),
                      name=f"TB-STEREO (seed {seed})")
