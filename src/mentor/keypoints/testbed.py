"""Keypoint data and the generated testbed TB-KPT (METHODS.md §60 ``KeypointHeatmap``, §11
TRS).

An image is a small grey picture of a stick figure; its keypoints are ``K = 5`` landmarks
in pixel coordinates ``(x, y)`` (``x`` the column, ``y`` the row, pixel centres at integers,
``0 <= x, y <= size - 1``): ``head`` (the centre of the head disk), ``left_hand``,
``right_hand``, ``left_foot``, ``right_foot``. "Left" is the figure's left as drawn (its
limbs on the image's left side before rotation), so a horizontal flip swaps the pairs
:data:`FLIP_PAIRS`.

:func:`tb_kpt` generates the testbed, deterministic for a seed (defaults: 1,000 images of
24 × 24 pixels; 200 test, 100 validation and 700 training images, of which 5 % -- 35 --
carry their keypoints (``labeled``) and the rest do not (``unlabeled``)). A figure, in
its body frame (``y`` down, unit ``s`` the torso length, drawn uniformly in
``[scale_low, scale_high]`` = ``[4.5, 6]`` px): neck ``(0, -s/2)``, hip ``(0, s/2)``,
head disk of radius ``0.3 s`` centred ``0.45 s`` above the neck; each arm leaves the neck
sideways (its side's direction raised or lowered by up to 60° from horizontal), in two
segments (``0.55 s`` and ``0.5 s``) with an elbow bend of up to ±70°; each leg leaves the
hip downwards, 5°..40° outwards from vertical, in two segments (``0.6 s`` and ``0.55 s``)
with a knee bend of up to ±40°. The figure is rotated by up to ±30° about its torso's
centre and placed uniformly where every keypoint lies at least ``margin`` (1.5) px inside
the frame. Drawing: strokes of half-width 0.6 px with a 1 px linear edge, brightness
``0.6 .. 1``; background: a level ``0 .. 0.3`` plus a random linear gradient (up to 0.15
across the frame); clutter: ``2 .. 4`` random segments of 3..8 px at brightness
``0.3 .. 0.8`` drawn under the figure; Gaussian noise of std ``noise`` (0.04); values
clipped to ``[0, 1]``.

Bad arguments and inconsistent tensors raise :class:`~mentor.errors.MentorError` (or its
:class:`~mentor.errors.DataError`): one sentence naming the field, the value and what is
expected -- e.g. a keypoint outside its image names the keypoint, the image and the image
size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..data.splits import check_split_ids
from ..errors import DataError, MentorError

NAMES = ("head", "left_hand", "right_hand", "left_foot", "right_foot")
FLIP_PAIRS = ((1, 2), (3, 4))
SPLITS = ("labeled", "unlabeled", "val", "test")


@dataclass(frozen=True, eq=False)
class KeypointData:
    """Images ``(N, 1, S, S)`` in ``[0, 1]``, keypoints ``(N, K, 2)`` as ``(x, y)`` pixels,
    the splits as image ids (``labeled`` / ``unlabeled``: the training pool with and
    without keypoints; a learner reads ``keypoints`` of ``labeled`` only, of ``val`` for
    selection and of ``test`` for the final score), the keypoint ``names`` and the
    ``flip_pairs`` swapped by a horizontal flip; ``sigma``: the std in pixels of the
    Gaussian target heatmaps (:func:`mentor.keypoints.gaussian_heatmaps`)."""

    images: Tensor
    keypoints: Tensor
    labeled: Tensor
    unlabeled: Tensor
    val: Tensor
    test: Tensor
    names: tuple[str, ...] = NAMES
    flip_pairs: tuple[tuple[int, int], ...] = FLIP_PAIRS
    sigma: float = 1.0
    name: str = "keypoint data"

    def __post_init__(self):
        x = self.images
        if not torch.is_tensor(x) or x.dim() != 4 or x.shape[1] != 1 or \
                x.shape[2] != x.shape[3] or not x.is_floating_point():
            raise DataError(f"images has shape {tuple(getattr(x, 'shape', ()))}; expected "
                            "(images, 1, size, size) grey values")
        n, size = int(x.shape[0]), int(x.shape[2])
        k = len(self.names)
        kp = self.keypoints
        if not torch.is_tensor(kp) or tuple(kp.shape) != (n, k, 2) or \
                not kp.is_floating_point():
            raise DataError(f"keypoints has shape {tuple(getattr(kp, 'shape', ()))}; "
                            f"expected {(n, k, 2)}: (x, y) of each of the {k} named "
                            "keypoints per image")
        check_keypoints(kp, size, self.names)
        for a, b in self.flip_pairs:
            if not (0 <= a < k and 0 <= b < k) or a == b:
                raise DataError(f"flip_pairs holds ({a}, {b}); expected pairs of two "
                                f"different keypoint indices in 0..{k - 1}")
        if not float(self.sigma) > 0:
            raise DataError(f"sigma must be > 0 pixels, got {self.sigma!r}")
        check_split_ids({s: getattr(self, s) for s in SPLITS}, n, "image", "images")

    @property
    def size(self) -> int:
        """The side of an image in pixels."""
        return int(self.images.shape[2])

    @property
    def num_keypoints(self) -> int:
        return len(self.names)

    def describe(self) -> str:
        s = self.size
        n_train = len(self.labeled) + len(self.unlabeled)
        frac = 100 * len(self.labeled) / max(n_train, 1)
        return (f"{self.name}: {len(self.images)} grey images of {s}×{s} pixels, "
                f"{self.num_keypoints} keypoints ({', '.join(self.names)}); training pool "
                f"{n_train} images of which {len(self.labeled)} labeled ({frac:.0f} %) and "
                f"{len(self.unlabeled)} unlabeled; val {len(self.val)}, test "
                f"{len(self.test)}; target heatmaps σ {self.sigma:g} px")


def check_keypoints(keypoints: Tensor, size: int, names: tuple[str, ...] = NAMES) -> None:
    """:class:`DataError` unless every keypoint of ``keypoints`` ``(N, K, 2)`` is finite and
    lies in the ``size`` × ``size`` image (``0 <= x, y <= size - 1``)."""
    kp = keypoints
    bad = ~torch.isfinite(kp).all(-1) | (kp < 0).any(-1) | (kp > size - 1).any(-1)
    if bool(bad.any()):
        i, j = (int(v) for v in bad.nonzero()[0])
        x, y = (float(v) for v in kp[i, j])
        label = names[j] if j < len(names) else str(j)
        raise DataError(f"keypoint {label!r} of image {i} is at (x={x:g}, y={y:g}), outside "
                        f"the {size}×{size} image; expected 0 <= x, y <= {size - 1}")


def _rot(v: np.ndarray, a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


def _figure(rng: np.random.Generator, size: int, scale: tuple[float, float], margin: float):
    """Segments ``(M, 2, 2)``, head ``(centre, radius)`` and keypoints ``(5, 2)`` of one
    figure, in pixels."""
    s = rng.uniform(*scale)
    neck, hip = np.array([0.0, -s / 2]), np.array([0.0, s / 2])
    head = neck + np.array([0.0, -0.45 * s])
    segs, ends = [], {}
    for side, sign in (("left", -1.0), ("right", 1.0)):
        a = math.radians(rng.uniform(-60, 60))
        d1 = np.array([sign * math.cos(a), math.sin(a)])
        elbow = neck + 0.55 * s * d1
        hand = elbow + 0.5 * s * _rot(d1, math.radians(rng.uniform(-70, 70)))
        b = math.radians(rng.uniform(5, 40))
        d2 = np.array([sign * math.sin(b), math.cos(b)])
        knee = hip + 0.6 * s * d2
        foot = knee + 0.55 * s * _rot(d2, math.radians(rng.uniform(-40, 40)))
        segs += [(neck, elbow), (elbow, hand), (hip, knee), (knee, foot)]
        ends[f"{side}_hand"], ends[f"{side}_foot"] = hand, foot
    segs.append((neck, hip))
    kp = np.stack([head] + [ends[n] for n in NAMES[1:]])
    theta = math.radians(rng.uniform(-30, 30))
    c, si = math.cos(theta), math.sin(theta)
    rot = np.array([[c, -si], [si, c]])
    segs = np.einsum("ij,mpj->mpi", rot, np.array(segs))
    kp = kp @ rot.T
    head = rot @ head
    lo = margin - kp.min(0)
    hi = (size - 1 - margin) - kp.max(0)
    centre = rng.uniform(lo, np.maximum(hi, lo))
    return segs + centre, (head + centre, 0.3 * s), kp + centre


def _segment_distance(px: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    t = np.clip(((px - a) @ ab) / max(float(ab @ ab), 1e-12), 0.0, 1.0)
    return np.linalg.norm(px - (a + t[..., None] * ab), axis=-1)


def _stroke(dist: np.ndarray, half_width: float) -> np.ndarray:
    return np.clip(1.0 - (dist - half_width), 0.0, 1.0)


def tb_kpt(num_images: int = 1000, seed: int = 0, *, size: int = 24,
           labeled_fraction: float = 0.05, val: int = 100, test: int = 200,
           noise: float = 0.04, scale_low: float = 4.5, scale_high: float = 6.0,
           margin: float = 1.5, sigma: float = 1.0) -> KeypointData:
    """Generate TB-KPT (module docstring), deterministic for ``seed``."""
    for field, v, low in (("num_images", num_images, 1), ("size", size, 12),
                          ("val", val, 0), ("test", test, 0)):
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise MentorError(f"{field} must be an integer >= {low}, got {v!r}")
    pool = num_images - val - test
    if pool < 2:
        raise MentorError(f"num_images is {num_images}; expected more than val + test "
                          f"({val + test}) + 1 so the training pool holds two images")
    if not 0.0 < float(labeled_fraction) < 1.0:
        raise MentorError(f"labeled_fraction must be in (0, 1), got {labeled_fraction!r}")
    if not 0 < scale_low <= scale_high or 2.8 * scale_high + 2 * margin > size - 1:
        raise MentorError(f"scale_high is {scale_high!r}; expected 0 < scale_low <= "
                          f"scale_high and a figure (about 2.8 × scale px tall) inside the "
                          f"{size}×{size} frame")
    if not float(noise) >= 0:
        raise MentorError(f"noise must be >= 0, got {noise!r}")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    px = np.stack([xx, yy], -1)
    images = np.empty((num_images, size, size))
    kps = np.empty((num_images, len(NAMES), 2))
    for i in range(num_images):
        segs, (hc, hr), kp = _figure(rng, size, (scale_low, scale_high), margin)
        img = rng.uniform(0.0, 0.3) + rng.uniform(-0.15, 0.15) * (xx / (size - 1) - 0.5) \
            + rng.uniform(-0.15, 0.15) * (yy / (size - 1) - 0.5)
        for _ in range(int(rng.integers(2, 5))):
            a = rng.uniform(0, size - 1, 2)
            ang, ln = rng.uniform(0, 2 * math.pi), rng.uniform(3, 8)
            b = a + ln * np.array([math.cos(ang), math.sin(ang)])
            img = np.maximum(img, rng.uniform(0.3, 0.8) * _stroke(
                _segment_distance(px, a, b), 0.5))
        fig = np.zeros_like(img)
        for a, b in segs:
            fig = np.maximum(fig, _stroke(_segment_distance(px, a, b), 0.6))
        fig = np.maximum(fig, _stroke(np.linalg.norm(px - hc, axis=-1), hr))
        img = np.maximum(img, rng.uniform(0.6, 1.0) * fig)
        images[i] = np.clip(img + rng.normal(0.0, noise, img.shape), 0.0, 1.0)
        kps[i] = kp
    order = torch.from_numpy(rng.permutation(num_images)).long()
    n_lab = max(1, int(round(labeled_fraction * pool)))
    return KeypointData(
        torch.from_numpy(images).float().unsqueeze(1), torch.from_numpy(kps).float(),
        labeled=order[:n_lab].sort().values, unlabeled=order[n_lab:pool].sort().values,
        val=order[pool:pool + val].sort().values, test=order[pool + val:].sort().values,
        sigma=float(sigma), name="TB-KPT")
