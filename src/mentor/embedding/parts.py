"""Inputs with parts: the part-structured testbed TB-REID-PARTS and the part views of an
input (METHODS.md §43 CORE-ReID; Nguyen, Nguyen, Tran et al., "CORE-ReID: Comprehensive
Optimization and Refinement through Ensemble Fusion in Domain Adaptation for Person
Re-identification", Software 2024, official code TrinhQuocNguyen/CORE-ReID).

CORE-ReID splits a person image's feature map into an upper and a lower half (``num_split``
2 in ``reid/models/resnet.py``): the halves see different body parts, so each carries
identity evidence of its own, and an occluded or mis-cropped half spoils only its part. The
testbed's inputs are vectors, so the parts are made explicit [reconstruction]:

:func:`tb_reid_parts` generates TB-REID-PARTS, :class:`~mentor.embedding.testbed.ReIDData`
whose input is the concatenation of ``parts`` contiguous blocks (``input_dim / parts``
features each). Block ``p`` of a sample of identity ``i`` seen by camera ``c`` is
``W2_p · tanh(W1_p · [q_ip + s_cp + noise·ε, nuisance·n] + b1_p)``: its own fixed random
two-layer map (hidden 64) of its own identity latent ``q_ip ~ N(0, I_8)`` (the part's
appearance), camera shift ``s_cp ~ N(0, camera_shift² I_8)``, noise ``ε ~ N(0, I_8)`` and
nuisance ``n ~ N(0, I_8)``. With probability ``occlusion`` one block of a sample (drawn
uniformly) is *occluded*: its identity latent is replaced by a random draw ``N(0, I_8)``,
so that block carries no evidence of the identity and the other one still does. The
identities' parts are drawn independently: the parts carry partly independent evidence,
and the whole input more than either part. Splits, query / gallery and the source domain
(own identities, own camera shifts, per-dimension style ``exp(0.3·g)``, offset ``0.5·o``, a
random stream of its own) as :func:`~mentor.embedding.testbed.tb_reid`.

:func:`split_parts` gives the part views of inputs or features: the ``parts`` contiguous
blocks of the last dimension (the halves of the feature map's height in the official
``x[:, :, h // num_split * s: h // num_split * (s + 1), :]``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError, MentorError
from .testbed import (ReIDData, _nonnegative, _positive_int, assemble, identity_cameras,
                      settings, target_and_source)


def split_parts(x: Tensor, parts: int = 2) -> list[Tensor]:
    """The ``parts`` contiguous blocks of ``x``'s last dimension (module docstring)."""
    parts = _positive_int("parts", parts)
    if not torch.is_tensor(x) or x.dim() < 1 or x.shape[-1] % parts:
        raise DataError(f"x has shape {tuple(getattr(x, 'shape', ()))}; expected a last "
                        f"dimension divisible by parts ({parts})")
    w = x.shape[-1] // parts
    return [x[..., w * p: w * (p + 1)] for p in range(parts)]


def tb_reid_parts(*, seed: int = 0, train_identities: int = 150, val_identities: int = 40,
                  test_identities: int = 100, source_identities: int = 0,
                  samples_per_identity: int = 12, cameras: int = 4, parts: int = 2,
                  input_dim: int = 64, camera_shift: float = 0.3, noise: float = 0.2,
                  nuisance: float = 1.0, occlusion: float = 0.3) -> ReIDData:
    """Generate TB-REID-PARTS (module docstring), deterministic for ``seed``."""
    n_tr, n_va, n_te, n_src, per, n_cam, dim, camera_shift, noise, nuisance = settings(
        train_identities, val_identities, test_identities, source_identities,
        samples_per_identity, cameras, input_dim, camera_shift, noise, nuisance)
    n_parts = _positive_int("parts", parts)
    if dim % n_parts:
        raise MentorError(f"input_dim must be divisible by parts ({n_parts}), got {dim}")
    occlusion = _nonnegative("occlusion", occlusion)
    if occlusion > 1:
        raise MentorError(f"occlusion must be a probability in [0, 1], got {occlusion!r}")
    rng = np.random.default_rng(seed)
    latent, hidden, width = 8, 64, dim // n_parts
    maps = [(rng.normal(0.0, 1.5 / np.sqrt(2 * latent), size=(2 * latent, hidden)),
             rng.normal(0.0, 0.5, size=hidden),
             rng.normal(0.0, 1.0 / np.sqrt(hidden), size=(hidden, width)))
            for _ in range(n_parts)]
    shifts = rng.normal(0.0, camera_shift, size=(n_cam, n_parts, latent))
    src_shifts = rng.normal(0.0, camera_shift, size=(n_cam, n_parts, latent))
    gain = np.exp(0.3 * rng.normal(size=dim))
    offset = 0.5 * rng.normal(size=dim)

    def draw(r: np.random.Generator, first: int, count: int, cam_shifts: np.ndarray):
        protos = r.normal(size=(count, n_parts, latent))
        ident, cams = identity_cameras(r, count, per, n_cam)
        n = len(ident)
        q = protos[ident].copy()
        occluded = r.random(n) < occlusion
        which = r.integers(0, n_parts, size=n)
        q[occluded, which[occluded]] = r.normal(size=(int(occluded.sum()), latent))
        z_id = q + cam_shifts[cams] + noise * r.normal(size=(n, n_parts, latent))
        blocks = []
        for p, (w1, b1, w2) in enumerate(maps):
            z = np.concatenate([z_id[:, p], nuisance * r.normal(size=(n, latent))], 1)
            blocks.append(np.tanh(z @ w1 + b1) @ w2)
        return np.concatenate(blocks, 1), ident + first, cams

    n_target = n_tr + n_va + n_te
    x, identity, camera = target_and_source(draw, rng, seed, n_target, n_src, shifts,
                                            src_shifts, gain, offset)
    return assemble(x, identity, camera, n_tr, n_va, n_te, identity >= n_target,
                    f"TB-REID-PARTS (seed {seed}, {n_parts} parts)")
