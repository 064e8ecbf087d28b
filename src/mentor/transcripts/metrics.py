"""Greedy CTC decoding and the token error rate (METHODS.md §60 ``SequenceASR``: the WER
of LDA, paper 3, on tokens).

- :func:`greedy_decode`: per utterance, the arg-max class of each frame within its length,
  consecutive repeats collapsed, blanks dropped (Graves et al., "Connectionist Temporal
  Classification", ICML 2006: best-path decoding).
- :func:`token_error_rate`: corpus-level ``Σ_u levenshtein(hyp_u, ref_u) / Σ_u |ref_u|``
  (summed over utterances, like WER), the Levenshtein distance being mentor's
  (:func:`mentor.lm.preference.levenshtein`: insertions, deletions, substitutions, each 1).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ..errors import DataError
from ..lm.preference import levenshtein
from .testbed import BLANK


def greedy_decode(logits: Tensor, lengths: Tensor, blank: int = BLANK) -> list[list[int]]:
    """Best-path CTC decodes of ``logits`` ``(B, T, C)`` (or log-probabilities), the first
    ``lengths[b]`` frames of each."""
    if logits.dim() != 3 or len(lengths) != logits.shape[0]:
        raise DataError(f"logits has shape {tuple(logits.shape)} for {len(lengths)} "
                        "lengths; expected (utterances, frames, classes) and one length "
                        "per utterance")
    ids = logits.argmax(-1)
    prev = torch.cat([torch.full_like(ids[:, :1], -1), ids[:, :-1]], 1)
    within = torch.arange(ids.shape[1])[None, :] < lengths[:, None]
    keep = within & (ids != blank) & (ids != prev)
    return [row[k].tolist() for row, k in zip(ids, keep)]


def edit_errors(hypotheses: Sequence[Sequence[int]],
                references: Sequence[Sequence[int]]) -> tuple[int, int]:
    """``(Σ edit distance, Σ reference length)`` over paired utterances."""
    if len(hypotheses) != len(references):
        raise DataError(f"hypotheses has {len(hypotheses)} utterances but references has "
                        f"{len(references)}; expected one hypothesis per reference")
    errors = sum(levenshtein(list(h), list(r)) for h, r in zip(hypotheses, references))
    return errors, sum(len(r) for r in references)


def token_error_rate(hypotheses: Sequence[Sequence[int]],
                     references: Sequence[Sequence[int]]) -> float:
    """Corpus-level token error rate (module docstring)."""
    errors, total = edit_errors(hypotheses, references)
    if total == 0:
        raise DataError("references hold no token; expected at least one reference token "
                        "to rate errors against")
    return errors / total
