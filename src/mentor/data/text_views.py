"""Weak and strong views of texts (token ids), so the semi-supervised presets run on text.

A token augmentation is registered in :data:`mentor.registry.AUGMENTS` like the tensor ones,
with ``fn.inputs = "tokens"``: it takes the batch's named tensors (``input_ids``,
``attention_mask``, ``(B, L)``), their uniform draws ``u`` ``(B, P)`` and the layout
``(L,)``, and returns new named tensors. All randomness enters through ``u``, drawn per
(seed, step, role, row) by the engine, so views are exact under resume and across processes.

- ``token_drop``: word dropout -- each token is deleted with probability ``p`` (its
  attention-mask entry set to 0, so no model reads it; at least one token is kept). The
  weak/strong pair of text SSL: light vs heavy deletion, as UDA and later text-SSL work use
  word-level noising (Xie et al. 2020, "Unsupervised Data Augmentation for Consistency
  Training"; word dropout: Iyyer et al. 2015, "Deep Unordered Composition Rivals Syntactic
  Methods for Text Classification").
- ``token_span``: keeps one contiguous span of a fraction of the text's tokens, drawn in
  ``[min_keep, 1]`` (a random crop of the text), deleting the rest.
- ``token_resample`` (rows that keep a label per position, ``fn.inputs = "ids"``: a tagging
  row, one tensor of token ids with 0 padding the end): each real token becomes, with
  probability ``p``, a copy of a token drawn uniformly from the same row's real tokens. No
  token moves and padding stays padding, so the tags stay aligned; the replacement comes
  from the row, so no vocabulary size is needed. Token-replacement noise as in UDA's
  word-replacing augmentation [reconstruction: UDA replaces by TF-IDF-chosen vocabulary
  words, here by the row's own tokens]. Where a token's identity decides its tag (entity
  words, as in TB-SEQ tagging) a resampled token's true tag changes while its label stays:
  the view then corrupts labels, and the presets trained through it lose to scratch there
  (measurement ``tagging-ssl``).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ..errors import check_param
from ..registry import AUGMENTS
from .augment import ELEMENTS, IDS, TOKENS


def _keep_one(keep: Tensor, mask: Tensor) -> Tensor:
    """``keep`` with each row's first real token kept when the row would lose them all."""
    real = mask.bool()
    empty = ~(keep & real).any(1)
    first = torch.zeros_like(keep)
    first[torch.arange(len(keep)), real.int().argmax(1)] = True
    return torch.where(empty[:, None], keep | first, keep)


@AUGMENTS.register("token_drop", description="text: delete each token with probability p "
                   "(word dropout; its attention mask set to 0, at least one token kept)",
                   paper="Iyyer et al. 2015 (word dropout); Xie et al. 2020, UDA")
def token_drop(x: dict[str, Tensor], u: Tensor, input_shape: Sequence[int], *,
               p: float = 0.1) -> dict[str, Tensor]:
    check_param("token_drop", "p", p, low=0, high=1)
    mask = x["attention_mask"]
    keep = _keep_one(u.to(mask.device)[:, :mask.shape[1]] >= p, mask)
    return {**x, "attention_mask": mask * keep.to(mask.dtype)}


token_drop.draws = ELEMENTS
token_drop.inputs = TOKENS


@AUGMENTS.register("token_span", description="text: keep one contiguous span of a fraction "
                   "in [min_keep, 1] of the text's tokens (a random crop), delete the rest")
def token_span(x: dict[str, Tensor], u: Tensor, input_shape: Sequence[int], *,
               min_keep: float = 0.5) -> dict[str, Tensor]:
    check_param("token_span", "min_keep", min_keep, low=0, high=1, low_open=True)
    mask = x["attention_mask"]
    u = u.to(mask.device, torch.float32)
    length = mask.sum(1).float()
    span = (length * (min_keep + (1 - min_keep) * u[:, 0])).ceil().clamp(min=1)
    start = ((length - span) * u[:, 1]).floor()
    pos = torch.arange(mask.shape[1], device=mask.device).float()[None]
    keep = (pos >= start[:, None]) & (pos < (start + span)[:, None])
    return {**x, "attention_mask": mask * _keep_one(keep, mask).to(mask.dtype)}


token_span.draws = 2
token_span.inputs = TOKENS


@AUGMENTS.register("token_resample", description="tagging: each real token becomes, with "
                   "probability p, a copy of a token drawn from the same row (positions and "
                   "padding kept, so the tags stay aligned)",
                   paper="Xie et al. 2020, UDA (word replacement); row-drawn [reconstruction]")
def token_resample(x: Tensor, u: Tensor, input_shape: Sequence[int], *,
                   p: float = 0.1) -> Tensor:
    """One draw per position: ``u < p`` resamples the token, and ``u / p`` (uniform on
    ``[0, 1)`` given ``u < p``) picks which of the row's real tokens it copies."""
    check_param("token_resample", "p", p, low=0, high=1)
    real = x != 0
    u = u.to(x.device, torch.float32)[:, :x.shape[1]]
    length = real.sum(1, keepdim=True)
    pick = (u / max(p, 1e-12) * length).floor().long().clamp(max=(length - 1).clamp(min=0))
    drawn = x.gather(1, pick.clamp(min=0))  # real tokens fill each row's front
    return torch.where(real & (u < p), drawn, x)


token_resample.draws = ELEMENTS
token_resample.inputs = IDS
