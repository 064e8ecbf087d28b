"""Re-ID data and the generated testbed TB-REID (METHODS.md §60 ``MetricEmbedding``; the
setting of §33 Learning to Purification, Lan et al., "Learning to Purification for
Unsupervised Person Re-identification", IEEE TIP 2023, and of §43 CORE-ReID, Nguyen et al.,
"CORE-ReID: Comprehensive Optimization and Refinement through Ensemble Fusion in Domain
Adaptation for Person Re-identification", Software 2024).

:class:`ReIDData` holds samples ``x`` ``(N, D)`` with an ``identity`` and a ``camera`` each,
and the sample ids of the splits:

- ``train``: the unlabeled training samples. Their identities are stored for telemetry only
  (the purity of pseudo-labels); unsupervised training never reads them.
- ``val_query`` / ``val_gallery``: a query / gallery split of the validation identities, for
  model selection;
- ``query`` / ``gallery``: a query / gallery split of the test identities, scored once;
- ``source``: (optional) labeled samples of other identities from a shifted domain, the
  source domain of unsupervised domain adaptation (§43); empty by default.

The identities of train, validation, test and source are disjoint, as in re-ID benchmarks.

:func:`tb_reid` generates TB-REID, deterministic for a seed:

- every identity ``i`` has a latent prototype ``p_i ~ N(0, I_16)``; every camera ``c`` a
  latent shift ``s_c ~ N(0, camera_shift² I_16)`` (``camera_shift`` 0.3, 4 cameras);
- a sample of identity ``i`` seen by camera ``c`` has the latent
  ``z = [p_i + s_c + noise·ε, nuisance·n]`` with ``ε ~ N(0, I_16)`` (``noise`` 0.2) and a
  per-sample nuisance ``n ~ N(0, I_16)`` that carries no identity (pose, background;
  ``nuisance`` 1.0);
- the input is ``x = W2 · tanh(W1 · z + b1)``, a fixed random two-layer map (hidden 128,
  output ``input_dim`` 64; ``W1 ~ N(0, gain²/32)``, gain 1.5, ``b1 ~ N(0, 0.25)``,
  ``W2 ~ N(0, 1/128)``) drawn once from the seed: the same map for every split. Distances
  between raw inputs are dominated by the nuisance and bent by the map, so retrieval on the
  raw features is weak and a learned embedding has room to improve it. (The nuisance, noise
  and camera-shift scales were set so that the raw features' test mAP is about 0.3 and a
  supervised embedder's about 0.85: room for unsupervised learning to show.)
- each identity has ``samples_per_identity`` samples (12) with cameras drawn uniformly, at
  least two distinct cameras per identity (a re-drawn camera for the last sample otherwise).
- query / gallery: for every test (validation) identity, one sample of every camera that saw
  it is a query, the remaining samples are the gallery. A query whose identity has no
  gallery sample from another camera has no valid match and is skipped by the metrics.
- the source domain (``source_identities`` > 0): identities of their own, seen by
  ``cameras`` cameras with shifts of their own, and a domain shift on the input: every input
  dimension is scaled by ``exp(0.3·g)`` and offset by ``0.5·o`` (``g, o ~ N(0, 1)`` per
  dimension, drawn once), the "style" of another data set. The source samples come from a
  random stream of their own: adding them leaves the other samples unchanged.

Bad input (lengths that disagree, ids out of range, overlapping splits) raises
:class:`~mentor.errors.DataError`, bad parameters :class:`~mentor.errors.MentorError`: one
sentence naming the field, the value and what is expected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..data.splits import check_split_ids
from ..errors import DataError, MentorError

SPLITS = ("train", "val_query", "val_gallery", "query", "gallery", "source")


@dataclass(frozen=True, eq=False)
class ReIDData:
    """Samples with identities and cameras, and the sample ids of the splits (module
    docstring)."""

    x: Tensor
    identity: Tensor
    camera: Tensor
    train: Tensor
    val_query: Tensor
    val_gallery: Tensor
    query: Tensor
    gallery: Tensor
    source: Tensor
    name: str = "re-ID data"

    def __post_init__(self):
        x = self.x
        if not torch.is_tensor(x) or x.dim() != 2 or not x.is_floating_point():
            raise DataError(f"x has shape {tuple(getattr(x, 'shape', ()))}; expected "
                            "(samples, features) floats")
        if len(x) and not bool(torch.isfinite(x).all()):
            raise DataError("x holds a non-finite value; expected finite features")
        for name in ("identity", "camera"):
            v = getattr(self, name)
            if not torch.is_tensor(v) or v.dim() != 1 or v.is_floating_point() or \
                    v.dtype == torch.bool:
                raise DataError(f"{name} has shape {tuple(getattr(v, 'shape', ()))}; expected "
                                "one integer id per sample")
            if len(v) != len(x):
                raise DataError(f"{name} has {len(v)} entries but x has {len(x)} samples; "
                                "expected one per sample")
            if len(v) and int(v.min()) < 0:
                raise DataError(f"{name} holds {int(v.min())}; expected ids >= 0")
        check_split_ids({name: getattr(self, name) for name in SPLITS}, len(x), "sample",
                        "samples")
        groups = {"train": ("train",), "validation": ("val_query", "val_gallery"),
                  "test": ("query", "gallery"), "source": ("source",)}
        seen: dict[int, str] = {}
        for group, names in groups.items():
            ids = torch.cat([getattr(self, n) for n in names]).long()
            for i in torch.unique(self.identity[ids]).tolist():
                if i in seen and seen[i] != group:
                    raise DataError(f"identity {i} appears in the {seen[i]} and the {group} "
                                    "samples; expected disjoint identities")
                seen[i] = group

    @property
    def dim(self) -> int:
        return int(self.x.shape[1])

    def describe(self) -> str:
        def ids(*names):
            s = torch.cat([getattr(self, n) for n in names]).long()
            return len(torch.unique(self.identity[s])) if len(s) else 0
        out = (f"{self.name}: {len(self.x)} samples of dimension {self.dim}, "
               f"{len(torch.unique(self.camera))} cameras; train {len(self.train)} samples of "
               f"{ids('train')} identities (unlabeled), validation {ids('val_query')} "
               f"identities ({len(self.val_query)} queries, {len(self.val_gallery)} gallery), "
               f"test {ids('query')} identities ({len(self.query)} queries, "
               f"{len(self.gallery)} gallery)")
        if len(self.source):
            out += f"; source domain {len(self.source)} labeled samples of {ids('source')} " \
                   "identities"
        return out


def _positive_int(name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise MentorError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _nonnegative(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not (v >= 0.0) or v == float("inf"):
        raise MentorError(f"{name} must be a finite number >= 0, got {value!r}")
    return v


def settings(train_identities, val_identities, test_identities, source_identities,
             samples_per_identity, cameras, input_dim, camera_shift, noise, nuisance):
    """The checked counts and scales of a generated testbed (one sentence per bad value)."""
    return (_positive_int("train_identities", train_identities),
            _positive_int("val_identities", val_identities),
            _positive_int("test_identities", test_identities),
            _positive_int("source_identities", source_identities, 0),
            _positive_int("samples_per_identity", samples_per_identity, 2),
            _positive_int("cameras", cameras, 2), _positive_int("input_dim", input_dim),
            _nonnegative("camera_shift", camera_shift), _nonnegative("noise", noise),
            _nonnegative("nuisance", nuisance))


def identity_cameras(r: np.random.Generator, count: int, per: int, n_cam: int):
    """``(identity, camera)`` of ``per`` samples of each of ``count`` identities: cameras
    uniform, at least two distinct ones per identity (module docstring)."""
    ident = np.repeat(np.arange(count), per)
    cams = r.integers(0, n_cam, size=(count, per))
    for i in range(count):  # at least two distinct cameras per identity
        if (cams[i] == cams[i, 0]).all():
            cams[i, -1] = (cams[i, 0] + 1 + r.integers(0, n_cam - 1)) % n_cam
    return ident, cams.reshape(-1)


def target_and_source(draw, rng: np.random.Generator, seed: int, n_target: int, n_src: int,
                      shifts: np.ndarray, src_shifts: np.ndarray, gain: np.ndarray,
                      offset: np.ndarray):
    """``(x, identity, camera)``: ``draw(rng, 0, n_target, shifts)`` for the target
    identities, then (``n_src`` > 0) the source identities from a random stream of their own
    (the target samples do not depend on the source) with the style ``x·gain + offset``."""
    x, identity, camera = draw(rng, 0, n_target, shifts)
    if n_src:
        xs, ids, cs = draw(np.random.default_rng([seed, 1]), n_target, n_src, src_shifts)
        x = np.concatenate([x, xs * gain + offset])
        identity, camera = np.concatenate([identity, ids]), np.concatenate([camera, cs])
    return x, identity, camera


def tb_reid(*, seed: int = 0, train_identities: int = 150, val_identities: int = 40,
            test_identities: int = 100, source_identities: int = 0,
            samples_per_identity: int = 12, cameras: int = 4, input_dim: int = 64,
            camera_shift: float = 0.3, noise: float = 0.2,
            nuisance: float = 1.0) -> ReIDData:
    """Generate TB-REID (module docstring), deterministic for ``seed``."""
    n_tr, n_va, n_te, n_src, per, n_cam, dim, camera_shift, noise, nuisance = settings(
        train_identities, val_identities, test_identities, source_identities,
        samples_per_identity, cameras, input_dim, camera_shift, noise, nuisance)
    rng = np.random.default_rng(seed)
    latent, hidden = 16, 128
    w1 = rng.normal(0.0, 1.5 / np.sqrt(2 * latent), size=(2 * latent, hidden))
    b1 = rng.normal(0.0, 0.5, size=hidden)
    w2 = rng.normal(0.0, 1.0 / np.sqrt(hidden), size=(hidden, dim))
    shifts = rng.normal(0.0, camera_shift, size=(n_cam, latent))
    src_shifts = rng.normal(0.0, camera_shift, size=(n_cam, latent))
    gain = np.exp(0.3 * rng.normal(size=dim))
    offset = 0.5 * rng.normal(size=dim)

    def draw(r: np.random.Generator, first: int, count: int, cam_shifts: np.ndarray):
        """Inputs, identities and cameras of identities ``first .. first+count-1``."""
        protos = r.normal(size=(count, latent))
        ident, cams = identity_cameras(r, count, per, n_cam)
        z_id = protos[ident] + cam_shifts[cams] + noise * r.normal(size=(len(ident), latent))
        z = np.concatenate([z_id, nuisance * r.normal(size=(len(ident), latent))], 1)
        return np.tanh(z @ w1 + b1) @ w2, ident + first, cams

    n_target = n_tr + n_va + n_te
    x, identity, camera = target_and_source(draw, rng, seed, n_target, n_src, shifts,
                                            src_shifts, gain, offset)
    is_src = identity >= n_target

    return assemble(x, identity, camera, n_tr, n_va, n_te, is_src, f"TB-REID (seed {seed})")


def assemble(x: np.ndarray, identity: np.ndarray, camera: np.ndarray, n_tr: int, n_va: int,
             n_te: int, is_src: np.ndarray, name: str) -> ReIDData:
    """:class:`ReIDData` of generated samples: identities ``0..n_tr-1`` train, the next
    ``n_va`` validation and ``n_te`` test identities split into query / gallery (module
    docstring), ``is_src`` the source-domain samples."""
    train = np.flatnonzero(identity < n_tr)
    split: dict[str, list[int]] = {"val_query": [], "val_gallery": [], "query": [],
                                   "gallery": []}
    for i in range(n_tr, n_tr + n_va + n_te):
        kind = "val_" if i < n_tr + n_va else ""
        rows = np.flatnonzero(identity == i)
        queries = [int(rows[camera[rows] == c][0]) for c in np.unique(camera[rows])]
        split[kind + "query"] += queries
        split[kind + "gallery"] += [int(r) for r in rows if int(r) not in queries]
    t = torch.from_numpy
    return ReIDData(t(x.astype(np.float32)), t(identity), t(camera), t(train),
                    *(torch.tensor(sorted(split[k]), dtype=torch.long)
                      for k in ("val_query", "val_gallery", "query", "gallery")),
                    t(np.flatnonzero(is_src)), name=name)
